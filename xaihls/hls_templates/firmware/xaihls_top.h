// The top function of the xaihls engine (docs/program.md, "The top's interface").
#ifndef XAIHLS_TOP_H_
#define XAIHLS_TOP_H_

// Runs the Program in `ddr`: method 0 predicts; 1..6 also attribute (gradient, saliency,
// input_x_gradient, integrated_gradients, guided_backprop, deconvnet). target < 0 explains
// the predicted class; steps is the integrated-gradients step count (2..1024).
// Returns 0, or status bits: 1 bus error, 2 not a version-1 Program (or one larger than
// this engine was built for), 4 an argument out of range.
int xaihls_top(short *ddr, int method, int target, int steps);

#endif
