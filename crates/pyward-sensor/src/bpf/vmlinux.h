/* Selects the vendored BTF dump of the target architecture (see VMLINUX.md for where each
 * comes from). CO-RE relocates every field access against the running kernel's BTF, so
 * these only need to name the types and fields the programs use. */
#if defined(__TARGET_ARCH_x86)
#include "vmlinux_x86_64.h"
#elif defined(__TARGET_ARCH_arm64)
#include "vmlinux_arm64.h"
#else
#error "pyward-sensor: no vendored vmlinux.h for this architecture (x86_64 and arm64 only)"
#endif
