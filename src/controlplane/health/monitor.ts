/**
 * Active health checking: one check loop per (Service, endpoint address) for Services
 * that declare `healthCheck`. An endpoint starts healthy, is marked unhealthy after
 * `unhealthyThreshold` consecutive failures and healthy again after `healthyThreshold`
 * consecutive successes; each transition is reported (and logged) once.
 *
 * The owner tells the monitor what to check with reconcile() whenever the endpoints or
 * checks may have changed; loops of endpoints that disappeared stop at once.
 */
import { parseDuration, type HealthCheck, type ServiceProtocol } from '../../config/index.js'
import { probeEndpoint, type Probe } from './probe.js'

/** What to check for one Service. */
export interface HealthTarget {
  check: HealthCheck
  protocol: ServiceProtocol
  /** Every endpoint to check (static and registered), `IP:PORT`. */
  addresses: readonly string[]
}

export interface HealthTransition {
  /** `namespace/name` of the Service. */
  service: string
  address: string
  healthy: boolean
  /** `3 consecutive failures: connect ECONNREFUSED`. */
  detail: string
}

export interface HealthMonitorOptions {
  onTransition: (transition: HealthTransition) => void
  log: (line: string) => void
  /** The check itself (tests of the monitor may pass their own). */
  probe?: Probe
  /** Fraction of the interval by which each wait varies, default 0.1. */
  jitter?: number
}

interface Checker {
  service: string
  address: string
  target: HealthTarget
  intervalMs: number
  timeoutMs: number
  healthy: boolean
  successes: number
  failures: number
  timer: NodeJS.Timeout | undefined
  running: boolean
  stopped: boolean
}

function checkerKey(service: string, address: string): string {
  return `${service} ${address}`
}

export class HealthMonitor {
  private readonly checkers = new Map<string, Checker>()
  private readonly unhealthy = new Map<string, Set<string>>()
  private readonly probe: Probe
  private readonly jitter: number
  private closed = false

  constructor(private readonly options: HealthMonitorOptions) {
    this.probe = options.probe ?? probeEndpoint
    this.jitter = options.jitter ?? 0.1
  }

  /** Addresses of `namespace/name` currently withheld. */
  unhealthyOf(service: string): ReadonlySet<string> | undefined {
    return this.unhealthy.get(service)
  }

  get checkCount(): number {
    return this.checkers.size
  }

  /**
   * Makes the running loops match `targets` (by `namespace/name`): starts loops for new
   * endpoints, stops those no longer listed, and applies changed check settings to the
   * running ones without resetting their state.
   */
  reconcile(targets: ReadonlyMap<string, HealthTarget>): void {
    if (this.closed) return
    const wanted = new Set<string>()
    for (const [service, target] of targets) {
      for (const address of target.addresses) {
        const key = checkerKey(service, address)
        wanted.add(key)
        const existing = this.checkers.get(key)
        if (existing !== undefined) {
          existing.target = target
          existing.intervalMs = parseDuration(target.check.interval)
          existing.timeoutMs = parseDuration(target.check.timeout)
          continue
        }
        const checker: Checker = {
          service,
          address,
          target,
          intervalMs: parseDuration(target.check.interval),
          timeoutMs: parseDuration(target.check.timeout),
          healthy: true,
          successes: 0,
          failures: 0,
          timer: undefined,
          running: false,
          stopped: false,
        }
        this.checkers.set(key, checker)
        // The first check comes soon, spread over a tenth of the interval so a Service
        // with many endpoints does not probe them all in the same instant.
        this.schedule(checker, Math.random() * checker.intervalMs * this.jitter)
      }
    }
    for (const [key, checker] of this.checkers) {
      if (!wanted.has(key)) this.stop(key, checker)
    }
  }

  close(): void {
    this.closed = true
    for (const [key, checker] of this.checkers) this.stop(key, checker)
  }

  private stop(key: string, checker: Checker): void {
    checker.stopped = true
    clearTimeout(checker.timer)
    this.checkers.delete(key)
    const set = this.unhealthy.get(checker.service)
    set?.delete(checker.address)
    if (set?.size === 0) this.unhealthy.delete(checker.service)
  }

  private schedule(checker: Checker, delayMs: number): void {
    checker.timer = setTimeout(() => void this.run(checker), delayMs)
    checker.timer.unref()
  }

  private async run(checker: Checker): Promise<void> {
    if (checker.stopped) return
    const { target } = checker
    let failure: string | undefined
    try {
      failure = await this.probe({
        address: checker.address,
        path: target.check.path,
        protocol: target.protocol,
        timeoutMs: checker.timeoutMs,
      })
    } catch (err) {
      failure = (err as Error).message
    }
    if (checker.stopped) return
    this.record(checker, failure)
    const spread = 1 + (Math.random() * 2 - 1) * this.jitter
    this.schedule(checker, checker.intervalMs * spread)
  }

  private record(checker: Checker, failure: string | undefined): void {
    const { check } = checker.target
    if (failure === undefined) {
      checker.successes++
      checker.failures = 0
      if (!checker.healthy && checker.successes >= check.healthyThreshold) {
        this.transition(checker, true, `${checker.successes} consecutive successes`)
      }
    } else {
      checker.failures++
      checker.successes = 0
      if (checker.healthy && checker.failures >= check.unhealthyThreshold) {
        const count = checker.failures === 1 ? '1 failure' : `${checker.failures} consecutive failures`
        this.transition(checker, false, `${count}: ${failure}`)
      }
    }
  }

  private transition(checker: Checker, healthy: boolean, detail: string): void {
    checker.healthy = healthy
    let set = this.unhealthy.get(checker.service)
    if (healthy) {
      set?.delete(checker.address)
      if (set?.size === 0) this.unhealthy.delete(checker.service)
    } else {
      if (set === undefined) this.unhealthy.set(checker.service, (set = new Set()))
      set.add(checker.address)
    }
    this.options.log(`health: ${checker.service} ${checker.address} ${healthy ? 'healthy' : 'unhealthy'} (${detail})`)
    this.options.onTransition({ service: checker.service, address: checker.address, healthy, detail })
  }
}
