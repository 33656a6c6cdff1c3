/** Resources -> engine snapshot input. */
export { compileProxyConfig, proxySettings, type CompileOptions, type ProxySettings } from './compile.js'
