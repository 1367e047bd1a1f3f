// The optimizers' update passes (dtrain_optimizer.h) for one instruction set; included by
// kernels_<set>.c after vector.h. Whole vectors of LANES elements, then element by element, with
// the same operations in the same order, none fused, so the split changes nothing.
#pragma clang fp contract(off)

static void KERNEL(dtrain_sgd_step)(float *w, const float *grad, float *buf, const float *decay, intptr_t n, float lr,
                                    float momentum, int first, int nesterov) {
    intptr_t i = 0;
    const vec lr_v = broadcast(lr), mu = broadcast(momentum);
    for (; i + LANES <= n; i += LANES) {
        const vec wi = load(w + i), g = load(grad + i) + load(decay + i) * wi;
        const vec b = first ? g : mu * load(buf + i) + g;
        store(buf + i, b);
        store(w + i, wi - lr_v * (nesterov ? g + mu * b : b));
    }
    for (; i < n; i++) {
        const float g = grad[i] + decay[i] * w[i];
        const float b = first ? g : momentum * buf[i] + g;
        buf[i] = b;
        w[i] -= lr * (nesterov ? g + momentum * b : b);
    }
}

static void KERNEL(dtrain_adamw_step)(float *w, const float *grad, float *m, float *v, const float *decay, intptr_t n,
                                      float lr, float beta1, float beta2, float c1, float sqrt_c2, float eps) {
    intptr_t i = 0;
    const float k1 = 1 - beta1, k2 = 1 - beta2;
    for (; i + LANES <= n; i += LANES) {
        const vec g = load(grad + i);
        vec wi = load(w + i);
        wi = wi - broadcast(lr) * load(decay + i) * wi;
        const vec mi = broadcast(beta1) * load(m + i) + broadcast(k1) * g;
        const vec vi = broadcast(beta2) * load(v + i) + broadcast(k2) * g * g;
        store(m + i, mi);
        store(v + i, vi);
        store(w + i, wi - broadcast(lr) * (mi / c1) / (__builtin_elementwise_sqrt(vi) / sqrt_c2 + eps));
    }
    for (; i < n; i++) {
        const float g = grad[i];
        w[i] -= lr * decay[i] * w[i];
        m[i] = beta1 * m[i] + k1 * g;
        v[i] = beta2 * v[i] + k2 * g * g;
        w[i] -= lr * (m[i] / c1) / (__builtin_sqrtf(v[i]) / sqrt_c2 + eps);
    }
}
