#ifndef DTRAIN_OPTIMIZER_H
#define DTRAIN_OPTIMIZER_H

#include <stddef.h>
#include <stdint.h>

// The optimizers' update passes over a model's flat parameter buffer (DTrainTraining's SGD and
// AdamW). Each kernel set has its variant of each, in its `dtrain_kernel_table`
// (dtrain_kernel_table.h). Every variant computes the same values bit for bit: each element is
// updated with the operations below, in the order written, none fused.

/// torch.optim.SGD on elements 0 ..< n: g = grad + decay·w; buf = g on the first step, else
/// momentum·buf + g; w −= lr·(nesterov ? g + momentum·buf : buf).
typedef void dtrain_sgd_step_fn(float *w, const float *grad, float *buf, const float *decay, intptr_t n, float lr,
                                float momentum, int first, int nesterov);

/// torch.optim.AdamW on elements 0 ..< n, with c1 = 1 − β1ᵗ and sqrt_c2 = √(1 − β2ᵗ):
/// w −= (lr·decay)·w; m = β1·m + (1 − β1)·g; v = β2·v + ((1 − β2)·g)·g;
/// w −= (lr·(m / c1)) / (√v / sqrt_c2 + eps).
typedef void dtrain_adamw_step_fn(float *w, const float *grad, float *m, float *v, const float *decay, intptr_t n,
                                  float lr, float beta1, float beta2, float c1, float sqrt_c2, float eps);

#endif
