// Drives Cairn's web UI in headless Chromium (playwright-core): first-start
// account, Persons & Groups, a group's page, renaming a group type in
// Settings, Insights and their drill-downs (the actors behind a number),
// Feature flags, Events, script-bearing names and properties on every
// page, sign-out and sign-in. Saves a screenshot of each page.
//
// Usage: node ui.mjs BASE_URL SCREENSHOT_DIR PROJECT_KEY
// Prints one JSON object with what the pages showed.
import { createRequire } from 'node:module'
import fs from 'node:fs'

const require = createRequire(`${process.env.CAIRN_NODE_PROJECT}/package.json`)
const { chromium } = require('playwright-core')
const [base, shots, projectKey] = process.argv.slice(2)
fs.mkdirSync(shots, { recursive: true })

const browser = await chromium.launch({
  executablePath: process.env.CAIRN_CHROMIUM,
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
})
const page = await browser.newPage({ viewport: { width: 1366, height: 860 } })
const out = { errors: [], timings: {}, csp_violations: [], dialogs: [] }
const documentCsp = new Set()
page.on('pageerror', (e) => out.errors.push(String(e)))
page.on('response', (r) => {
  if (r.status() >= 400) out.errors.push(`${r.status()} ${r.url()}`)
  if (r.request().resourceType() === 'document') documentCsp.add(r.headers()['content-security-policy'] ?? 'none')
})
// Chromium reports what the Content-Security-Policy blocked (an inline style, a script) on the console.
page.on('console', (m) => { if (m.text().includes('Content Security Policy')) out.csp_violations.push(m.text()) })
page.on('dialog', (d) => { out.dialogs.push(d.message()); d.dismiss() })

async function shot(name) {
  await page.screenshot({ path: `${shots}/${name}.png`, fullPage: true })
}
async function timed(name, action) {
  const started = Date.now()
  await action()
  out.timings[name] = Date.now() - started
}
const text = (selector) => page.locator(selector).allInnerTexts()
// The links from a result's numbers to the actors behind them.
const drillLinks = () => page.locator('.result a[href*="/insights/actors?cell="]')
// Per insight kind: how many numbers link to their actors, and the first link.
out.drill = {}
async function drillable(kind) {
  out.drill[kind] = { links: await drillLinks().count(), href: await drillLinks().first().getAttribute('href') }
}

// First start: the UI asks for the admin account.
await page.goto(base)
out.first_url = new URL(page.url()).pathname
await shot('01-setup')
await page.getByLabel('Email').fill('admin@example.com')
await page.getByLabel(/^Password/).fill('correct horse battery')
await timed('persons', () => page.getByRole('button', { name: 'Create account' }).click())
await page.waitForURL(/\/project\/1\/persons$/)
out.persons_title = await page.title()
out.tabs = await text('nav.tabs a')
out.person_rows = await page.locator('table tbody tr').count()
await shot('02-persons')

// A group type tab, searched, and one group's page.
await timed('groups', () => page.locator('nav.tabs a').nth(1).click())
out.groups_heading = await page.locator('h1').innerText()
out.group_rows = await page.locator('table tbody tr').count()
await shot('03-groups')
const first = page.locator('table tbody tr a').first()
out.group_name = await first.innerText()
await timed('group', () => first.click())
out.group_page_heading = await page.locator('h1').innerText()
out.group_properties = await page.locator('table.props tbody tr').count()
out.group_events = await page.locator('section:has(h2:text("Latest events")) tbody tr').count()
await shot('04-group')

// A person's page from the persons list.
await page.goto(`${base}/project/1/persons`)
await timed('person', () => page.locator('table tbody tr a').first().click())
out.person_page_heading = await page.locator('h1').innerText()
await shot('05-person')

// Rename the first group type; the tabs follow.
await timed('settings', () => page.getByRole('link', { name: 'Settings' }).click())
await shot('06-settings')
await page.locator('input[id^="singular_"]').first().fill('organisation')
await page.locator('input[id^="plural_"]').first().fill('organisations')
await page.getByRole('button', { name: 'Save names' }).click()
out.saved_notice = await page.locator('.notice').innerText()
await page.getByRole('link', { name: 'Persons & Groups' }).click()
out.tabs_after_rename = await text('nav.tabs a')

// Insights: trends counted by the (renamed) group type, broken down by a
// group property, shown as totals; then a funnel aggregated by it.
await timed('insights', () => page.getByRole('link', { name: 'Insights' }).click())
out.counted_by_options = await page.locator('#counted_by option').allInnerTexts()
await page.locator('#kind').selectOption('trends')
await page.locator('#event1').fill('signed up')
await page.locator('#counted_by').selectOption({ label: 'Unique organisations' })
await page.locator('#date_from').selectOption('all')
await page.locator('#breakdown_type').selectOption({ label: 'Organisation property' })
await page.locator('#breakdown').fill('plan')
await page.locator('#display').selectOption('number')
await timed('trends', () => page.getByRole('button', { name: 'Calculate' }).click())
out.trends_numbers = await page.locator('.bold-number').allInnerTexts()
await drillable('trends_total')
out.trends_query = await page.locator('details:has(summary:text("Query JSON")) pre').textContent()
await shot('07-trends-number')
await page.locator('#name').fill('Sign-ups by plan')
await page.getByRole('button', { name: 'Save insight' }).click()
out.saved_insights = await page.locator('table tbody tr td:first-child').allInnerTexts()
// A saved insight opens as the filled-in builder; it runs when asked to.
await page.locator('table tbody tr td:first-child a').first().click()
out.saved_insight_event = await page.locator('#event1').inputValue()
out.saved_insight_ran_on_open = await page.locator('.result').count()
await page.getByRole('button', { name: 'Calculate' }).click()
out.saved_insight_numbers = await page.locator('.bold-number').count()
await page.getByRole('link', { name: 'New insight' }).click()
await page.locator('#event1').fill('$pageview')
await page.locator('#date_from').selectOption('-30d')
await page.getByRole('button', { name: 'Calculate' }).click()
out.line_chart_lines = await page.locator('svg.chart polyline').count()
await drillable('trends_line')
await shot('07-trends-line')
await page.locator('#kind').selectOption('funnels')
await page.locator('#event1').fill('signed up')
await page.locator('#event2').fill('activated')
await page.locator('#counted_by').selectOption({ label: 'Unique organisations' })
await page.locator('#date_from').selectOption('all')
await page.locator('#filter_type').selectOption({ label: 'Organisation property' })
await page.locator('#filter_key').fill('plan')
await page.locator('#filter_value').fill('enterprise, pro')
await timed('funnel', () => page.getByRole('button', { name: 'Calculate' }).click())
out.funnel_steps = await page.locator('.funnel .step').allInnerTexts()
out.funnel_query = await page.locator('details:has(summary:text("Query JSON")) pre').textContent()
await drillable('funnel')
await shot('08-funnel')
await page.locator('#kind').selectOption('retention')
await page.locator('#event2').fill('')
await page.locator('#event1').fill('activated')
await page.locator('#interval').selectOption('week')
await page.locator('#filter_key').fill('')
await page.getByRole('button', { name: 'Calculate' }).click()
out.retention_rows = await page.locator('table.retention tbody tr').count()
await drillable('retention')
await shot('09-retention')
await page.locator('#kind').selectOption('lifecycle')
await page.locator('#event1').fill('$pageview')
await page.locator('#date_from').selectOption('-30d')
await page.getByRole('button', { name: 'Calculate' }).click()
out.lifecycle_legend = await page.locator('.legend li').allInnerTexts()
await drillable('lifecycle')
await shot('09-lifecycle')
await page.locator('#kind').selectOption('stickiness')
await page.getByRole('button', { name: 'Calculate' }).click()
out.stickiness_bars = await page.locator('svg.chart rect').count()
await drillable('stickiness')
await page.locator('#kind').selectOption('paths')
await page.getByRole('button', { name: 'Calculate' }).click()
out.path_rows = await page.locator('.result table tbody tr').count()
await drillable('paths')
await shot('09-paths')

// Each kind's first link lists its actors (or says why not).
for (const [kind, drill] of Object.entries(out.drill)) {
  if (!drill.href) continue
  await page.goto(new URL(drill.href, base).href)
  drill.title = await page.locator('h1').innerText()
  drill.rows = await page.locator('main table tbody tr').count()
  drill.errors = await text('.notice.error')
  await shot(`09-actors-${kind}`)
}
// Which actors dropped off at step 2 of a company funnel: a click on the
// count, then the list's CSV.
await page.goto(`${base}/project/1/insights`)
await page.locator('#kind').selectOption('funnels')
await page.locator('#event1').fill('signed up')
await page.locator('#event2').fill('activated')
await page.locator('#counted_by').selectOption({ label: 'Unique organisations' })
await page.locator('#date_from').selectOption('all')
await page.getByRole('button', { name: 'Calculate' }).click()
out.dropped_query = await page.locator('details:has(summary:text("Query JSON")) pre').textContent()
out.dropped_step = await page.locator('.funnel .step').nth(1).innerText()
await timed('actors', () => page.locator('.funnel li').nth(1).getByRole('link', { name: /dropped off/ }).click())
out.dropped_cell = new URL(page.url()).searchParams.get('cell')
out.dropped_title = await page.locator('h1').innerText()
out.dropped_columns = await text('main table thead th')
out.dropped = await page.locator('main table tbody tr td:first-child a').evaluateAll((links) => links.map((a) => ({
  key: decodeURIComponent(a.getAttribute('href').split('/').pop()),
  path: a.getAttribute('href').split('/').slice(0, -1).join('/'),
  name: a.textContent,
})))
out.dropped_next = await page.locator('a[rel="next"]').count()
await shot('09-actors-dropped-off')
const csvLink = page.getByRole('link', { name: 'Download CSV' })
const csv = await page.request.get(new URL(await csvLink.getAttribute('href'), base).href)
out.dropped_csv = { status: csv.status(), type: csv.headers()['content-type'], body: await csv.text() }
// Searching for the first one lists it alone; a property column shows.
if (out.dropped.length > 0) {
  await page.locator('#search').fill(out.dropped[0].key)
  await page.locator('#columns').fill('plan')
  await page.getByRole('button', { name: 'Apply' }).click()
  out.dropped_searched = await text('main table tbody tr td:first-child')
  out.dropped_searched_columns = await text('main table thead th')
}
// A cell the insight cannot answer is a message on the page.
await page.goto(`${base}/project/1/insights/actors?cell=${encodeURIComponent(JSON.stringify({
  kind: 'FunnelsActorsQuery', source: JSON.parse(out.dropped_query), funnelStep: 9 }))}`)
out.bad_cell = await text('.notice.error')

// A flag matched by the renamed group type, tested on an enterprise
// organisation and on a starter one.
async function groupKey(search) {
  await page.goto(`${base}/project/1/persons`)
  await page.locator('nav.tabs a').nth(1).click()
  await page.getByLabel(/^Search/).fill(search)
  await page.getByRole('button', { name: 'Search' }).click()
  return page.locator('table tbody tr td:nth-child(2)').first().innerText()
}
const enterprise = await groupKey('enterprise')
const starter = await groupKey('starter')
await timed('flags', () => page.getByRole('link', { name: 'Feature flags' }).click())
await page.getByRole('link', { name: 'New feature flag' }).click()
out.match_by_options = await page.locator('#match_by option').allInnerTexts()
await page.getByLabel('Key', { exact: true }).fill('org-beta')
await page.getByLabel('Description', { exact: true }).fill('Beta for enterprise organisations')
await page.locator('#match_by').selectOption({ label: 'Organisations' })
await page.locator('#c0_f0_key').fill('plan')
await page.locator('#c0_f0_value').fill('enterprise')
await page.getByRole('button', { name: 'Save flag' }).click()
out.flag_saved = await page.locator('.notice').innerText()
await shot('10-flag')
async function test(key) {
  await page.getByLabel('Distinct ID').fill('someone')
  await page.getByLabel('Organisation key').fill(key)
  await page.getByRole('button', { name: 'Test' }).click()
  return page.locator('.test-result').innerText()
}
out.flag_enterprise = await test(enterprise)
await shot('11-flag-test')
out.flag_starter = await test(starter)
await page.getByRole('link', { name: 'Feature flags' }).click()
out.flag_list = await page.locator('table tbody tr').allInnerTexts()
// A bad definition is refused with the reason, the form kept.
await page.getByRole('link', { name: 'New feature flag' }).click()
await page.getByLabel('Key', { exact: true }).fill('org-beta')
await page.getByRole('button', { name: 'Save flag' }).click()
out.flag_duplicate = await page.locator('.notice.error').innerText()
out.flag_duplicate_key_kept = await page.getByLabel('Key', { exact: true }).inputValue()

// Events.
await timed('events', () => page.getByRole('link', { name: 'Events' }).click())
out.event_rows = await page.locator('table tbody tr').count()
// Live: the list reloads itself and shows an event sent meanwhile.
await page.getByRole('checkbox', { name: /Live/ }).check()
await page.getByRole('button', { name: 'Show' }).click()
out.live_refresh = await page.locator('meta[http-equiv="refresh"]').getAttribute('content')
await fetch(`${base}/batch/`, {
  method: 'POST',
  headers: { 'Content-Type': 'application/json' },
  body: JSON.stringify({ api_key: projectKey, batch: [{ event: 'live probe', distinct_id: 'watcher' }] }),
})
out.live_seen = await page.getByText('live probe').first().waitFor({ timeout: 15000 }).then(() => true, () => false)
await shot('12-events')

// Script-bearing text that anyone with the project key can send: a group
// type's name, person and group properties, an event name; and a flag's
// description typed in the UI (its key allows no such characters). Every
// page shows them as text (or as a field's value) and runs no script.
const hostile = {
  group_type: `"><script>document.title='xss group type'</script>`,
  person_property: `"><script>document.title='xss person property'</script>`,
  group_property: `"><script>document.title='xss group property'</script>`,
  event: `"><script>document.title='xss event'</script>`,
  flag_name: `"><script>document.title='xss flag name'</script>`,
  group_name: '<script>alert(1)</script>',
}
await fetch(`${base}/batch/`, {
  method: 'POST',
  headers: { 'Content-Type': 'application/json' },
  body: JSON.stringify({ api_key: projectKey, batch: [
    { event: hostile.event, distinct_id: 'hostile-person', properties: {
      $set: { [hostile.person_property]: hostile.person_property },
      $groups: { [hostile.group_type]: 'hostile-group' } } },
    { event: '$groupidentify', distinct_id: 'hostile-person', properties: {
      $group_type: hostile.group_type, $group_key: 'hostile-group',
      $group_set: { [hostile.group_property]: hostile.group_property, name: hostile.group_name } } },
  ] }),
})
// Pages read what capture acknowledged, so the new group type is there.
await page.goto(`${base}/project/1/feature_flags`)
await page.getByRole('link', { name: 'New feature flag' }).click()
await page.getByLabel('Key', { exact: true }).fill('hostile-names')
await page.getByLabel('Description', { exact: true }).fill(hostile.flag_name)
await page.locator('#match_by').selectOption('1')
await page.getByRole('button', { name: 'Save flag' }).click()
const hostileFlag = page.url()
out.hostile = {}
async function hostilePage(name, open) {
  const response = await open()
  const text = await page.locator('body').textContent()
  const values = await page.locator('input').evaluateAll((inputs) => inputs.map((i) => i.value))
  out.hostile[name] = {
    csp: response?.headers()['content-security-policy'] ?? 'none',
    scripts: await page.locator('script').count(),
    title: await page.title(),
    shown: Object.keys(hostile).filter((field) => text.includes(hostile[field])),
    in_fields: Object.keys(hostile).filter((field) => values.some((v) => v.includes(hostile[field]))),
  }
  await shot(`14-hostile-${name}`)
}
const click = (locator) => async () => {
  const [response] = await Promise.all([page.waitForNavigation(), locator.click()])
  return response
}
await hostilePage('persons', () => page.goto(`${base}/project/1/persons?search=hostile`))
await hostilePage('person', click(page.locator('table tbody tr a').first()))
await hostilePage('groups', () => page.goto(`${base}/project/1/groups/1`))
await hostilePage('group', click(page.locator('table tbody tr a').first()))
await hostilePage('events', () => page.goto(`${base}/project/1/events`))
await page.goto(`${base}/project/1/insights`)
await page.locator('#event1').fill(hostile.event)
await page.locator('#date_from').selectOption('all')
await hostilePage('insights', click(page.getByRole('button', { name: 'Calculate' })))
// The actors behind the hostile event's numbers, persons and then groups,
// with the hostile property as a column.
const hostileActors = async (name, property) => {
  const href = await drillLinks().first().getAttribute('href')
  await hostilePage(name, () => page.goto(`${base}${href}&columns=${encodeURIComponent(property)}`))
}
await hostileActors('actors', hostile.person_property)
await page.goto(`${base}/project/1/insights`)
await page.locator('#event1').fill(hostile.event)
await page.locator('#date_from').selectOption('all')
await page.locator('#counted_by').selectOption('1')
await page.locator('#display').selectOption('number')
await page.getByRole('button', { name: 'Calculate' }).click()
await hostileActors('group_actors', hostile.group_property)
await hostilePage('flags', () => page.goto(`${base}/project/1/feature_flags`))
await hostilePage('flag', () => page.goto(hostileFlag))
await hostilePage('settings', () => page.goto(`${base}/project/1/settings`))
out.document_csp = [...documentCsp]

// Sign out; pages now need signing in again, and the password works.
await page.getByRole('button', { name: 'Sign out' }).click()
out.after_sign_out = new URL(page.url()).pathname
await page.goto(`${base}/project/1/settings`)
out.settings_without_session = new URL(page.url()).pathname
await shot('13-login')
await page.getByLabel('Email').fill('admin@example.com')
await page.getByLabel('Password').fill('wrong password')
await page.getByRole('button', { name: 'Sign in' }).click()
out.wrong_password = await page.locator('.notice').innerText()
await page.getByLabel('Password').fill('correct horse battery')
await page.getByRole('button', { name: 'Sign in' }).click()
out.signed_in_again = new URL(page.url()).pathname

await browser.close()
console.log(JSON.stringify(out))
