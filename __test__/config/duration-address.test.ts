import { describe, expect, it } from 'vitest'
import { formatDuration, formatHostPort, parseDuration, parseHostPort } from '../../src/config/index.js'

describe('parseDuration', () => {
  it.each([
    ['250ms', 250],
    ['2s', 2000],
    ['1m', 60_000],
    ['1h', 3_600_000],
    ['1.5s', 1500],
    ['0.25s', 250],
    ['1m30s', 90_000],
    ['1h1m1s1ms', 3_661_001],
    ['0s', 0],
  ])('reads %s as %i ms', (text, ms) => {
    expect(parseDuration(text)).toBe(ms)
  })

  it('rejects a bare number and says to add a unit', () => {
    expect(() => parseDuration(5)).toThrow(
      'expected a duration with a unit such as "250ms", "2s", "1m" or "1h", got the bare number 5 (add a unit, e.g. "5s" or "5ms")',
    )
  })

  it.each(['5', '', 's', '5 s', '-1s', '1d', '5sec', '1.s', '.5s', ' 1s', '1S'])('rejects %j', (text) => {
    expect(() => parseDuration(text)).toThrow(`expected a duration such as "250ms", "2s", "1m" or "1h", got ${JSON.stringify(text)}`)
  })

  it('rejects sub-millisecond precision', () => {
    expect(() => parseDuration('1.5ms')).toThrow('expected a whole number of milliseconds, got "1.5ms"')
  })

  it('rejects values that are not strings or numbers', () => {
    expect(() => parseDuration(true)).toThrow('got the boolean true')
    expect(() => parseDuration({ seconds: 1 })).toThrow('got a mapping')
  })

  it('formats milliseconds with the largest exact unit', () => {
    expect([0, 250, 1500, 2000, 90_000, 120_000, 7_200_000].map(formatDuration)).toEqual(['0ms', '250ms', '1500ms', '2s', '90s', '2m', '2h'])
    for (const ms of [1, 999, 1001, 61_000, 3_600_001]) expect(parseDuration(formatDuration(ms))).toBe(ms)
  })
})

describe('parseHostPort', () => {
  it('reads IPv4 and bracketed IPv6 addresses', () => {
    expect(parseHostPort('127.0.0.1:8080')).toEqual({ host: '127.0.0.1', port: 8080, family: 4 })
    expect(parseHostPort('[::1]:443')).toEqual({ host: '::1', port: 443, family: 6 })
    expect(parseHostPort('[2001:db8::7]:65535')).toEqual({ host: '2001:db8::7', port: 65535, family: 6 })
  })

  it('matches the spec message for a missing port', () => {
    expect(() => parseHostPort('localhost')).toThrow(/^expected HOST:PORT, got "localhost"$/)
    expect(() => parseHostPort('127.0.0.1')).toThrow(/^expected HOST:PORT, got "127.0.0.1"$/)
  })

  it('rejects hostnames: the data plane needs an IP', () => {
    expect(() => parseHostPort('localhost:80')).toThrow(/^expected HOST:PORT with an IP address, got "localhost:80"$/)
    expect(() => parseHostPort('orders.default:80')).toThrow('with an IP address')
    expect(() => parseHostPort('256.1.1.1:80')).toThrow('with an IP address')
  })

  it('asks for brackets around IPv6', () => {
    expect(() => parseHostPort('::1:80')).toThrow('with an IPv6 address in brackets (e.g. "[::1]:8080")')
    expect(() => parseHostPort('[::1]80')).toThrow('expected HOST:PORT, got "[::1]80"')
    expect(() => parseHostPort('[localhost]:80')).toThrow('with an IPv6 address inside the brackets')
    expect(() => parseHostPort('[fe80::1%eth0]:80')).toThrow('with an IPv6 address inside the brackets')
  })

  it('checks the port range, allowing 0 only for listeners', () => {
    expect(() => parseHostPort('127.0.0.1:0')).toThrow('with a port from 1 to 65535, got "127.0.0.1:0"')
    expect(parseHostPort('127.0.0.1:0', { allowPortZero: true }).port).toBe(0)
    expect(() => parseHostPort('127.0.0.1:65536', { allowPortZero: true })).toThrow('with a port from 0 to 65535')
    for (const bad of ['127.0.0.1:', '127.0.0.1:http', '127.0.0.1:+80', '127.0.0.1:8 0', '127.0.0.1:123456']) {
      expect(() => parseHostPort(bad), bad).toThrow('with a port from 1 to 65535')
    }
  })

  it('names the type when the value is not a string', () => {
    expect(() => parseHostPort(8080)).toThrow('expected HOST:PORT as a string, got the number 8080')
  })

  it('formats IPv6 hosts in brackets', () => {
    expect(formatHostPort('::', 4143)).toBe('[::]:4143')
    expect(formatHostPort('0.0.0.0', 4143)).toBe('0.0.0.0:4143')
  })
})
