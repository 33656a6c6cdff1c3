// linux-arm64-gnu: Debian's arm64 Node 18 under qemu-aarch64 loads the packed binding and
// proxies a real request (see foreign-arch.ts).
import { describeForeignArch } from './foreign-arch.js'
import { ARM64 } from './helpers.js'

describeForeignArch(ARM64)
