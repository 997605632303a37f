// The top function of the xaihls Engine v2 (docs/engine_v2.md; register map: docs/contract.md).
#ifndef XAIHLS_TOP_H_
#define XAIHLS_TOP_H_

#include "xaihls_types.h"

// Runs the Program in `ddr` (DW-bit beats): method 0 predicts; 1..6 also attribute (gradient,
// saliency, input_x_gradient, integrated_gradients, guided_backprop, deconvnet). target < 0
// explains the predicted class; steps is the integrated-gradients step count (2..1024).
// Returns 0, or contract.Status bits: BUS_ERROR, BAD_PROGRAM (not a Program of this contract version built
// for this engine), BAD_ARGUMENT (method, target, steps or IG table out of range).
int xaihls_top(xaihls::beat_t *ddr, int method, int target, int steps, int images);

#endif
