// This package's own package.json, found from wherever the code runs (src/ or the built dist/src/):
// the nearest one above this file, the way Node finds a module's package scope.
import { readFileSync } from 'node:fs'

export interface PackageInfo {
  name: string
  version: string
}

export const PACKAGE: PackageInfo = nearestPackage(new URL('.', import.meta.url))

function nearestPackage(dir: URL): PackageInfo {
  for (let at = dir; ; at = new URL('..', at)) {
    let text: string | undefined
    try {
      text = readFileSync(new URL('package.json', at), 'utf8')
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
    }
    if (text !== undefined) {
      const { name, version } = JSON.parse(text) as Partial<PackageInfo>
      if (typeof name !== 'string' || typeof version !== 'string') {
        throw new Error(`${new URL('package.json', at).pathname} has no name or version`)
      }
      return { name, version }
    }
    if (new URL('..', at).href === at.href) throw new Error('no package.json above the code')
  }
}
