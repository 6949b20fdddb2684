// Drives the real posthog-node SDK (from npm) against a Cairn server.
//
// Usage: node posthog_node.mjs HOST PROJECT_KEY PERSONAL_KEY
// Prints one JSON object with what the SDK returned, for the Rust test to
// compare with what the server stored.
import { createRequire } from 'node:module'

const require = createRequire(`${process.env.CAIRN_NODE_PROJECT}/package.json`)
const { PostHog } = require('posthog-node')

const [host, key, personalKey] = process.argv.slice(2)
const out = { errors: [] }

// Batched, gzip on (the default).
const ph = new PostHog(key, { host, flushAt: 3, flushInterval: 50 })
ph.on('error', (e) => out.errors.push(String(e)))
ph.groupIdentify({ groupType: 'company', groupKey: 'initech', properties: { name: 'Initech', plan: 'free' } })
ph.capture({ distinctId: 'node_anon', event: 'viewed_pricing', properties: { page: '/pricing' } })
ph.identify({ distinctId: 'node_user', properties: { $set: { email: 'dev@acme.io' }, $set_once: { first_seen: 'node' } } })
ph.alias({ distinctId: 'node_user', alias: 'node_anon' })
ph.capture({ distinctId: 'node_user', event: 'report_generated', properties: { format: 'pdf' }, groups: { company: 'acme' } })
await ph.flush()

// Remote evaluation, with and without the group.
out.remote_group = await ph.getFeatureFlag('company-beta', 'node_user', { groups: { company: 'acme' } })
out.remote_other_group = await ph.getFeatureFlag('company-beta', 'node_user', { groups: { company: 'initech' } })
out.remote_no_group = await ph.getFeatureFlag('company-beta', 'node_user')
out.remote_payload = await ph.getFeatureFlagPayload('company-beta', 'node_user', true, { groups: { company: 'acme' } })
out.remote_person = await ph.isFeatureEnabled('acme-staff', 'node_user')

// Local evaluation from the definitions endpoint.
const local = new PostHog(key, { host, personalApiKey: personalKey, featureFlagsPollingInterval: 60000 })
local.on('error', (e) => out.errors.push(String(e)))
await local.waitForLocalEvaluationReady(10000)
const company = { groups: { company: 'acme' }, groupProperties: { company: { plan: 'enterprise' } } }
out.local_group = await local.getFeatureFlag('company-beta', 'node_user', { ...company, onlyEvaluateLocally: true })
out.local_no_group = await local.getFeatureFlag('company-beta', 'node_user', { onlyEvaluateLocally: true })
out.local_all = await local.getAllFlags('node_user', {
  ...company,
  personProperties: { email: 'dev@acme.io' },
  onlyEvaluateLocally: true,
})
await ph.shutdown()
await local.shutdown()
console.log(JSON.stringify(out))
