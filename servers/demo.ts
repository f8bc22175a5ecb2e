#!/usr/bin/env node
// Our example MCP server, over stdio: a few tools (one slow that reports progress, one that
// fails), prompts, and resources including a template. The shipped servers_config.json starts it,
// so a newcomer's platform has tools to call; the tests use it as a real MCP peer.
import { McpServer, ResourceTemplate } from '@modelcontextprotocol/sdk/server/mcp.js'
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js'
import { setTimeout as sleep } from 'node:timers/promises'
import { z } from 'zod'

const server = new McpServer({ name: 'demo', version: '1.0.0' })

server.registerTool(
  'add',
  {
    description: 'Add two numbers.',
    inputSchema: { a: z.number().describe('first addend'), b: z.number().describe('second addend') },
    outputSchema: { sum: z.number() },
    annotations: { readOnlyHint: true },
  },
  ({ a, b }) => ({ content: [{ type: 'text', text: String(a + b) }], structuredContent: { sum: a + b } }),
)

server.registerTool(
  'echo',
  {
    description: 'Echo the text back.',
    inputSchema: { text: z.string().describe('what to echo') },
    annotations: { readOnlyHint: true },
  },
  ({ text }) => ({ content: [{ type: 'text', text }] }),
)

server.registerTool(
  'slow',
  {
    description: 'Wait for some seconds, reporting progress each step; stops when cancelled.',
    inputSchema: {
      seconds: z.number().min(0).max(600).describe('how long to work'),
      steps: z.number().int().min(1).max(100).optional().describe('how many progress reports (default 4)'),
    },
  },
  async ({ seconds, steps = 4 }, extra) => {
    const token = extra._meta?.progressToken
    for (let step = 1; step <= steps; step++) {
      await sleep((seconds * 1000) / steps, undefined, { signal: extra.signal })
      if (token !== undefined) {
        await extra.sendNotification({
          method: 'notifications/progress',
          params: { progressToken: token, progress: step, total: steps, message: `step ${step} of ${steps}` },
        })
      }
    }
    return { content: [{ type: 'text', text: `done after ${seconds} s` }] }
  },
)

server.registerTool(
  'fail',
  {
    description: 'Always fails, with the given reason.',
    inputSchema: { reason: z.string().optional().describe('why it fails') },
  },
  ({ reason }) => ({
    isError: true,
    content: [{ type: 'text', text: `failed: ${reason ?? 'as designed'}` }],
  }),
)

// Hidden until `unlock` is called: shows notifications/tools/list_changed at work.
const multiply = server.registerTool(
  'multiply',
  { description: 'Multiply two numbers.', inputSchema: { a: z.number(), b: z.number() } },
  ({ a, b }) => ({ content: [{ type: 'text', text: String(a * b) }] }),
)
multiply.disable()

// Also hidden until `unlock`: a prompt and a resource, for prompts/ and resources/list_changed.
const tables = server.registerPrompt(
  'times_table',
  { description: 'Ask for the multiplication table of a number.', argsSchema: { n: z.string() } },
  ({ n }) => ({
    messages: [{ role: 'user', content: { type: 'text', text: `Write the times table of ${n}.` } }],
  }),
)
tables.disable()
const unlocked = server.registerResource(
  'unlocked',
  'demo://unlocked',
  { description: 'Exists once unlock has run.', mimeType: 'text/plain' },
  (uri) => ({ contents: [{ uri: uri.href, mimeType: 'text/plain', text: 'unlocked' }] }),
)
unlocked.disable()

server.registerTool(
  'unlock',
  {
    description: 'Make the multiply tool, the times_table prompt and demo://unlocked available.',
    inputSchema: {},
  },
  () => {
    multiply.enable()
    tables.enable()
    unlocked.enable()
    return {
      content: [{ type: 'text', text: 'multiply, times_table and demo://unlocked are now available' }],
    }
  },
)

server.registerPrompt(
  'greeting',
  { description: 'Greet someone by name.', argsSchema: { name: z.string().describe('who to greet') } },
  ({ name }) => ({
    messages: [{ role: 'user', content: { type: 'text', text: `Please greet ${name} warmly.` } }],
  }),
)

server.registerPrompt(
  'summarize',
  {
    description: 'Ask for a summary of a topic in a given style.',
    argsSchema: { topic: z.string(), style: z.string().optional().describe('e.g. short, bullet points') },
  },
  ({ topic, style }) => ({
    messages: [
      { role: 'user', content: { type: 'text', text: `Summarize ${topic}${style ? ` as ${style}` : ''}.` } },
    ],
  }),
)

server.registerResource(
  'readme',
  'demo://readme',
  { description: 'What this server is.', mimeType: 'text/markdown' },
  (uri) => ({
    contents: [
      { uri: uri.href, mimeType: 'text/markdown', text: '# demo\nAn example MCP server of mcp-platform.' },
    ],
  }),
)

// A 1x1 transparent PNG: binary content, to be described rather than inlined.
const PIXEL = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII='
server.registerResource(
  'pixel',
  'demo://pixel.png',
  { description: 'A tiny image.', mimeType: 'image/png' },
  (uri) => ({
    contents: [{ uri: uri.href, mimeType: 'image/png', blob: PIXEL }],
  }),
)

server.registerResource(
  'note',
  new ResourceTemplate('demo://notes/{id}', { list: undefined }),
  { description: 'A note by id.', mimeType: 'text/plain' },
  (uri, { id }) => ({ contents: [{ uri: uri.href, mimeType: 'text/plain', text: `Note ${String(id)}.` }] }),
)

await server.connect(new StdioServerTransport())
