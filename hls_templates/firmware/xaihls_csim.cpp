// C-simulation entry point for Python (ctypes): the engine compiled with g++ as a shared
// library (-fvisibility=hidden: only this is exported). Not synthesized: build_prj.tcl does
// not add this file.
#include "xaihls_top.h"
#include "xaihls_host.h"

#define XAIHLS_EXPORT extern "C" __attribute__((visibility("default")))

// One start of the top on a DDR array of `bytes` bytes (as a host sees them; the entry hands
// the top DW-bit beats, checks every access against the array, and copies the beats back).
XAIHLS_EXPORT int xaihls_csim_run(unsigned char *ddr, long bytes, int method, int target, int steps, int images) {
    return xaihls::run_on_bytes(ddr, bytes, method, target, steps, images);
}

// Grid rows the walker skipped as off the map since the library was loaded (a test's count).
XAIHLS_EXPORT long xaihls_csim_skipped_rows() { return xaihls::csim_skipped_rows(); }

// Input beats the loader has read from DDR since the library was loaded (a test's count).
XAIHLS_EXPORT long xaihls_csim_input_beats() { return xaihls::csim_input_beats(); }
