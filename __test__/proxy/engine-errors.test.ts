import { describe, expect, it } from 'vitest'

import type { BindingProxyConfig } from '../../native/index.js'
import { describeEngineError } from '../../src/proxy/mesh-proxy.js'

const compiled: BindingProxyConfig = {
  source: 'mesh.yaml',
  inbound: [],
  tcpOutbound: [],
  services: [{ name: 'orders', namespace: 'shop', port: 80, protocol: 'http', endpoints: [], loadBalancer: 'ewma' }],
  httpRoutes: [{ name: 'split', namespace: 'default', parents: ['shop/orders'], rules: [] }],
  authorization: [{ name: 'web-api', namespace: 'shop', action: 'allow', rules: [] }],
}

describe('describeEngineError', () => {
  it('names the resource an engine field path came from', () => {
    expect(describeEngineError('services[0].endpoints[1].identity: bad', compiled)).toBe('Service "shop/orders": endpoints[1].identity: bad')
    expect(describeEngineError('httpRoutes[0].rules[0].matches[0].path.value: too large', compiled)).toBe(
      'HTTPRoute "default/split": rules[0].matches[0].path.value: too large',
    )
    expect(describeEngineError('authorization[0].rules[2].from[0]: expected a SPIFFE id, got "web"', compiled)).toBe(
      'AuthorizationPolicy "shop/web-api": rules[2].from[0]: expected a SPIFFE id, got "web"',
    )
  })

  it('leaves other messages, and positions past the end, as they are', () => {
    expect(describeEngineError('inbound[0].listen: address in use', compiled)).toBe('inbound[0].listen: address in use')
    expect(describeEngineError('authorization[3].action: bad', compiled)).toBe('authorization[3].action: bad')
  })
})
