// Drives the real posthog-js (from npm) in headless Chromium against a
// Cairn server: a page served here loads the SDK's browser bundle.
//
// Usage: node posthog_js.mjs HOST PROJECT_KEY PERSONAL_KEY
// Prints one JSON object with what the page saw, for the Rust test to
// compare with what the server stored.
import { createRequire } from 'node:module'
import fs from 'node:fs'
import http from 'node:http'
import zlib from 'node:zlib'

const require = createRequire(`${process.env.CAIRN_NODE_PROJECT}/package.json`)
const { chromium } = require('playwright-core')
const [host, key, personalKey] = process.argv.slice(2)

const bundle = fs.readFileSync(require.resolve('posthog-js/dist/array.full.js'))
// Counts sendBeacon calls where the next page (same origin) can read them.
const page = `<!doctype html><html><head><title>Acme app</title>
<script>
  const send = navigator.sendBeacon.bind(navigator)
  navigator.sendBeacon = (url, data) => {
    const seen = JSON.parse(localStorage.getItem('beacons') || '[]')
    localStorage.setItem('beacons', JSON.stringify([...seen, String(url)]))
    return send(url, data)
  }
</script>
<script src="/posthog.js"></script></head><body><h1>Acme app</h1></body></html>`
const site = http.createServer((req, res) => {
  if (req.url === '/posthog.js') {
    res.writeHead(200, { 'content-type': 'application/javascript' })
    res.end(bundle)
  } else {
    res.writeHead(200, { 'content-type': 'text/html' })
    res.end(page)
  }
})
await new Promise((resolve) => site.listen(0, '127.0.0.1', resolve))
const origin = `http://127.0.0.1:${site.address().port}`

const browser = await chromium.launch({
  executablePath: process.env.CAIRN_CHROMIUM,
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
})
const out = { failed: [], requests: [] }

/** A fresh browser profile on the test page with posthog-js initialised. */
async function open(name, { preloadedConfig } = {}) {
  const context = await browser.newContext()
  context.on('request', (r) => {
    if (r.url().startsWith(host)) {
      const url = new URL(r.url())
      out.requests.push({ session: name, path: url.pathname, type: r.headers()['content-type'] || null })
    }
  })
  context.on('requestfailed', (r) => out.failed.push(`${name}: ${r.url()} ${r.failure()?.errorText}`))
  context.on('response', (r) => {
    if (r.url().startsWith(host) && r.status() >= 400) out.failed.push(`${name}: ${r.url()} ${r.status()}`)
  })
  const tab = await context.newPage()
  await tab.goto(`${origin}/`)
  if (preloadedConfig) {
    // A page may embed the remote config; posthog-js then uses it from the start.
    await tab.evaluate(([key, config]) => {
      window._POSTHOG_REMOTE_CONFIG = { [key]: { config, siteApps: [] } }
    }, [key, preloadedConfig])
  }
  await tab.evaluate(([key, host]) => new Promise((resolve) => {
    window.posthog.init(key, {
      api_host: host,
      autocapture: false,
      disable_session_recording: true,
      // Headless Chromium says it is automated; posthog-js drops bot events otherwise.
      opt_out_useragent_filter: true,
      loaded: () => resolve(),
    })
  }), [key, host])
  return { context, tab }
}

/** A capture request's body as text, whichever transport sent it. */
function bodyText(request) {
  const body = request.postDataBuffer()
  if (!body) return ''
  if (body[0] === 0x1f && body[1] === 0x8b) return zlib.gunzipSync(body).toString()
  const text = body.toString()
  const data = new URLSearchParams(text).get('data')
  return data ? Buffer.from(data, 'base64').toString() : text
}

/**
 * Resolves once Cairn has answered a request carrying `event`. posthog-js
 * batches events on a timer, so waiting for the request, not a fixed time,
 * keeps a slow machine from closing the page on events still queued.
 */
function delivered(context, event) {
  return context.waitForEvent('requestfinished', {
    predicate: (r) => r.url().startsWith(host) && bodyText(r).includes(`"${event}"`),
    timeout: 30000,
  })
}

/**
 * Resolves once Cairn has stored `event`: a beacon leaves with the page, out
 * of sight of the page's requests, so ask the server instead of waiting a
 * fixed time that a busy machine may overrun.
 */
async function stored(event) {
  for (const started = Date.now(); Date.now() - started < 30000;) {
    const answer = await fetch(`${host}/api/projects/1/events/?event=${event}`, {
      headers: { authorization: `Bearer ${personalKey}` },
    })
    if ((await answer.json()).results?.length) return
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  throw new Error(`${event} was not stored within 30 s`)
}

// 1. The default transport (gzip): anonymous, identified, grouped, a group flag, reset.
{
  const { context, tab } = await open('gzip')
  out.anonymous_id = await tab.evaluate(() => {
    posthog.capture('viewed_pricing', { plan: 'team' })
    return posthog.get_distinct_id()
  })
  await tab.evaluate(() => {
    posthog.identify('js_user', { email: 'js@acme.io' })
    posthog.group('company', 'acme', { name: 'Acme', seats: 40 })
    posthog.capture('report_generated', { format: 'csv' })
  })
  // The group flag: true once flags are reloaded with the group.
  out.flag = await tab.waitForFunction(() => posthog.getFeatureFlag('company-beta'), null, { timeout: 10000 })
    .then((handle) => handle.jsonValue())
    .catch(() => null)
  // Events leave in order, so once the last is answered all are.
  const sent = delivered(context, 'after_reset')
  out.reset_id = await tab.evaluate(() => {
    posthog.reset()
    posthog.capture('after_reset')
    return posthog.get_distinct_id()
  })
  await sent
  await context.close()
}

// 2. The base64 form transport (a remote config offering only base64), and
//    events queued at unload leaving by sendBeacon.
{
  const config = await (await fetch(`${host}/array/${key}/config`)).json()
  const { context, tab } = await open('base64', {
    preloadedConfig: { ...config, supportedCompression: ['base64'] },
  })
  const formSent = delivered(context, 'form_sent')
  await tab.evaluate(() => {
    posthog.identify('beacon_user')
    posthog.capture('form_sent')
  })
  await formSent
  await tab.evaluate(() => posthog.capture('leaving', { reason: 'unload' }))
  await tab.goto(`${origin}/next`)
  out.beacons = await tab.evaluate(() => JSON.parse(localStorage.getItem('beacons') || '[]'))
  await stored('leaving')
  await context.close()
}

await browser.close()
site.close()
console.log(JSON.stringify(out))
