// C-simulation entry points for Python (ctypes): the engine compiled with g++ as a shared
// library (-fvisibility=hidden: only these two are exported). Not synthesized: build_prj.tcl
// does not add this file.
#include "xaihls_top.h"
#include "xaihls_host.h"

#define XAIHLS_EXPORT extern "C" __attribute__((visibility("default")))

// One start of the top on a DDR array of xaihls_csim_total_bytes() bytes (bytes as a host
// sees them; the entry hands the top DW-bit beats and copies them back).
XAIHLS_EXPORT int xaihls_csim_run(unsigned char *ddr, int method, int target, int steps) {
    return xaihls::run_on_bytes(ddr, xaihls::DDR_BYTES, method, target, steps);
}

// The DDR size (bytes) the engine was built for: the Program's total_bytes.
XAIHLS_EXPORT int xaihls_csim_total_bytes() { return xaihls::DDR_BYTES; }
