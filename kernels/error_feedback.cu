// Error feedback's passes over the whole tensor: u = g + m with the histogram of radix pass 0
// of |u| in the same read (the one full read of g and m and the one write of u), then, once
// top-k has chosen the k indices, the k-entry gather and the memory update m' = u - D(p).
#include "block_ops.cuh"

// u = g + m (u = g when has_memory is 0), and the pass-0 histogram of |u|'s keys.
extern "C" __global__ void ef_compensate_histogram(const float* g, const float* m, int has_memory, float* u,
                                                   long long n, unsigned long long* hist) {
    __shared__ unsigned local[QS_RADIX_BINS];
    qs_clear_histogram(local, QS_RADIX_BINS);
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x) {
        float value = has_memory ? g[i] + m[i] : g[i];
        u[i] = value;
        atomicAdd(&local[qs_radix_digit(qs_magnitude_key(value), 0)], 1u);
    }
    qs_flush_histogram(local, QS_RADIX_BINS, hist);
}

extern "C" __global__ void gather(const float* u, const long long* indices, long long k, float* out) {
    long long j = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (j < k) {
        out[j] = u[indices[j]];
    }
}

// u[indices[j]] -= values[j]: the indices are distinct, so no two threads touch one entry.
extern "C" __global__ void ef_subtract(float* u, const long long* indices, const float* values, long long k) {
    long long j = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (j < k) {
        u[indices[j]] -= values[j];
    }
}

// out[indices[j]] += values[j] for many ranks' payloads at once (repeated indices accumulate;
// the order of float additions differs from the reference's, so sums agree to rounding).
extern "C" __global__ void scatter_add(float* out, const long long* indices, const float* values, long long count) {
    long long j = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (j < count) {
        atomicAdd(&out[indices[j]], values[j]);
    }
}
