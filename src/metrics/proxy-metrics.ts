// The /metrics body of one proxy: engine stats read at scrape time, plus the proxy's own
// config metrics and Node's process metrics from a registry private to this proxy (not
// prom-client's global one), so two proxies embedded in one process never clash.

import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client'

import type { BindingStats } from '../../native/index.js'
import { renderEngineStats } from './engine-stats.js'

/** The Prometheus text format's content type. */
export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8'

export type ReloadResult = 'success' | 'failure'

export interface MetricsSource {
  /** The config version in force (0 before the first). */
  configVersion(): number
  /** One stats snapshot from the engine, or null when there is no engine to read. */
  engineStats(): BindingStats | null
}

export class ProxyMetrics {
  readonly registry = new Registry()
  private readonly reloads: Counter<'result'>

  constructor(private readonly source: MetricsSource) {
    collectDefaultMetrics({ register: this.registry })

    new Gauge({
      name: 'config_version',
      help: 'Version of the config in force (0 before the first one).',
      registers: [this.registry],
      collect() {
        this.set(source.configVersion())
      },
    })

    this.reloads = new Counter({
      name: 'config_reload_total',
      help: 'Config reloads and applies after start, by result.',
      labelNames: ['result'],
      registers: [this.registry],
    })
    // Both series exist from the start so `rate()` and alerts see a 0 rather than nothing.
    this.reloads.inc({ result: 'success' }, 0)
    this.reloads.inc({ result: 'failure' }, 0)
  }

  recordReload(result: ReloadResult): void {
    this.reloads.inc({ result })
  }

  /** The full exposition: engine metrics first, then config and process metrics. */
  async render(): Promise<string> {
    const stats = this.source.engineStats()
    const engine = stats ? renderEngineStats(stats) : ''
    return engine + (await this.registry.metrics())
  }
}
