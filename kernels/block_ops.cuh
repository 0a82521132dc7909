// Device-only building blocks of the kernels: a histogram kept in shared memory and flushed to
// global memory once per block, and an exclusive scan over a block's threads. They decide
// nothing about the result (the logic is in qsparse_device.cuh); they only combine counts.
#pragma once
#include "qsparse_device.cuh"

// Adds a block's shared histogram to the global one (one atomic per non-empty bin).
__device__ __forceinline__ void qs_flush_histogram(const unsigned* local, unsigned bins, unsigned long long* hist) {
    __syncthreads();
    for (unsigned b = threadIdx.x; b < bins; b += blockDim.x) {
        if (local[b]) {
            atomicAdd(&hist[b], (unsigned long long)local[b]);
        }
    }
}

__device__ __forceinline__ void qs_clear_histogram(unsigned* local, unsigned bins) {
    for (unsigned b = threadIdx.x; b < bins; b += blockDim.x) {
        local[b] = 0u;
    }
    __syncthreads();
}

// Exclusive prefix sum of `value` over the block's QS_CHUNK_THREADS threads (Hillis-Steele in
// shared memory); every thread must call it.
__device__ __forceinline__ unsigned long long qs_block_exclusive_scan(unsigned long long value,
                                                                      unsigned long long* scratch) {
    unsigned t = threadIdx.x;
    scratch[t] = value;
    __syncthreads();
    for (unsigned offset = 1; offset < QS_CHUNK_THREADS; offset <<= 1) {
        unsigned long long add = t >= offset ? scratch[t - offset] : 0ULL;
        __syncthreads();
        scratch[t] += add;
        __syncthreads();
    }
    unsigned long long inclusive = scratch[t];
    __syncthreads();
    return inclusive - value;
}

// A block-wide float64 sum, added to *out by thread 0 (blockDim.x must be QS_CHUNK_THREADS).
__device__ __forceinline__ void qs_block_add(double value, double* scratch, double* out) {
    unsigned t = threadIdx.x;
    scratch[t] = value;
    __syncthreads();
    for (unsigned half = QS_CHUNK_THREADS / 2; half > 0; half >>= 1) {
        if (t < half) {
            scratch[t] += scratch[t + half];
        }
        __syncthreads();
    }
    if (t == 0) {
        atomicAdd(out, scratch[0]);
    }
}
