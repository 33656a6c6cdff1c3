/**
 * The resilience fields of the resource model (HTTPRoute rule faults, rateLimit, retry;
 * Service circuitBreaker; Proxy inbound rateLimit): validation, defaults, and no
 * "not enforced" warning once the engine enforces them.
 */
import { describe, expect, it } from 'vitest'
import { validateResources, type HTTPRouteResource, type ProxyResource } from '../../src/config/index.js'
import { configErrors, errorsWithProxy, PROXY, validateWithProxy } from './helpers.js'

const at = (document: number, label: string, rest: string) => `mesh.yaml: document ${document} (${label}): ${rest}`

const service = { apiVersion: 'mesh/v1', kind: 'Service', name: 'orders', endpoints: [{ address: '127.0.0.1:18080' }] }

const route = (rule: Record<string, unknown>) => ({
  apiVersion: 'mesh/v1',
  kind: 'HTTPRoute',
  name: 'r',
  parentRefs: [{ name: 'orders' }],
  rules: [rule],
})

const withInbound = (inbound: Record<string, unknown>) => ({ ...PROXY, inbound: [{ port: 4143, forwardTo: '127.0.0.1:8080', ...inbound }] })

describe('faults', () => {
  it('are enforced: no warning', () => {
    const { warnings } = validateWithProxy(service, route({ faults: { delay: { percent: 5, fixed: '10ms' }, abort: { status: 503 } } }))
    expect(warnings).toEqual([])
  })
})

describe('rateLimit', () => {
  it('is enforced on rules and inbound ports: no warning, burst defaults to the rate rounded up', () => {
    const { resources, warnings } = validateResources(
      [withInbound({ rateLimit: { requestsPerSecond: 0.5 } }), service, route({ rateLimit: { requestsPerSecond: 100 } })],
      { fileLabel: 'mesh.yaml' },
    )
    expect(warnings).toEqual([])
    expect((resources[0] as ProxyResource).inbound[0]?.rateLimit).toEqual({ requestsPerSecond: 0.5, burst: 1 })
    expect((resources[2] as HTTPRouteResource).rules[0]?.rateLimit).toEqual({ requestsPerSecond: 100, burst: 100 })
  })

  it('refuses rates and bursts the engine cannot keep, naming the field', () => {
    expect(
      configErrors(() =>
        validateResources([withInbound({ rateLimit: { requestsPerSecond: 2e9, burst: 5e9 } })], { fileLabel: 'mesh.yaml' }),
      ),
    ).toEqual([at(1, 'Proxy "web"', 'inbound[0].rateLimit.burst: expected an integer from 1 to 1000000000, got the number 5000000000')])
    expect(configErrors(() => validateResources([withInbound({ rateLimit: { requestsPerSecond: 2e9 } })], { fileLabel: 'mesh.yaml' }))).toEqual([
      at(1, 'Proxy "web"', 'inbound[0].rateLimit.requestsPerSecond: expected at most 1000000000, got the number 2000000000'),
    ])
    expect(errorsWithProxy(service, route({ rateLimit: { burst: 3 } }))).toEqual([
      at(3, 'HTTPRoute "r"', 'rules[0].rateLimit.requestsPerSecond: required field is missing (expected a positive number)'),
    ])
  })
})

describe('retry', () => {
  it('is enforced: no warning', () => {
    expect(validateWithProxy(service, route({ retry: { attempts: 2 } })).warnings).toEqual([])
  })

  it('checks the budget window, replay buffer and nonIdempotent', () => {
    expect(
      errorsWithProxy(service, route({ retry: { budgetWindow: '500ms', maxRequestBytes: -1, nonIdempotent: 'yes', minRetriesPerSecond: 1.5 } })),
    ).toEqual([
      at(3, 'HTTPRoute "r"', 'rules[0].retry.budgetWindow: expected a duration of at least 1s, got "500ms"'),
      at(3, 'HTTPRoute "r"', 'rules[0].retry.maxRequestBytes: expected an integer from 0 to 67108864, got the number -1'),
      at(3, 'HTTPRoute "r"', 'rules[0].retry.nonIdempotent: expected true or false, got "yes"'),
      at(3, 'HTTPRoute "r"', 'rules[0].retry.minRetriesPerSecond: expected an integer from 0 to 1000000, got the number 1.5'),
    ])
  })
})

describe('circuitBreaker', () => {
  it('is enforced: no warning, every default filled in', () => {
    const { resources, warnings } = validateWithProxy({ ...service, circuitBreaker: { maxRequests: 10 } })
    expect(warnings).toEqual([])
    expect((resources[1] as { circuitBreaker?: unknown }).circuitBreaker).toEqual({
      maxConnections: 1024,
      maxPendingRequests: 1024,
      maxRequests: 10,
      consecutiveFailures: 5,
      ejection: '30s',
      maxEjectionPercent: 50,
    })
  })

  it('checks its limits and the ejection share', () => {
    expect(
      errorsWithProxy({ ...service, circuitBreaker: { maxRequests: 0, maxEjectionPercent: 150, ejection: '0s', maxConnections: 5e9 } }),
    ).toEqual([
      at(2, 'Service "orders"', 'circuitBreaker.maxRequests: expected an integer from 1 to 4294967295, got the number 0'),
      at(2, 'Service "orders"', 'circuitBreaker.maxEjectionPercent: expected a percentage from 0 to 100 (e.g. 20 or "20%"), got the number 150'),
      at(2, 'Service "orders"', 'circuitBreaker.ejection: expected a duration of at least 1ms, got "0s"'),
      at(2, 'Service "orders"', 'circuitBreaker.maxConnections: expected an integer from 1 to 4294967295, got the number 5000000000'),
    ])
  })
})
