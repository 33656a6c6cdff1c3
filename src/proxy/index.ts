export { MeshProxy, DEFAULT_DRAIN_TIMEOUT_MS } from './mesh-proxy.js'
export type {
  ApplyOptions,
  ApplyTrigger,
  CertificateView,
  CloseOptions,
  ConfigInForce,
  ControlPlaneView,
  ListenerDetail,
  MeshProxyEvent,
  MeshProxyOptions,
  ProxyListeners,
  ReloadResult,
} from './mesh-proxy.js'
export type { ControlPlaneOptions } from './control-plane-options.js'
