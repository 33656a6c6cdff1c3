// linux-ppc64-gnu (powerpc64le): Debian's ppc64el Node 18 under qemu-ppc64le loads the
// packed binding and proxies a real request (see foreign-arch.ts).
import { describeForeignArch } from './foreign-arch.js'
import { PPC64 } from './helpers.js'

describeForeignArch(PPC64)
