/* Selects the vendored BTF dump of the target architecture (bpftool btf dump file
 * /sys/kernel/btf/vmlinux format c). Only x86_64 is vendored so far. */
#if defined(__TARGET_ARCH_x86)
#include "vmlinux_x86_64.h"
#else
#error "pyward-sensor: no vendored vmlinux.h for this architecture (only x86_64)"
#endif
