// Exact top-k by radix select (the reference's hvd_qsparse.ops.exact_topk_indices), for
// magnitude keys (top-k) and counter-hash keys (rand-k). The Python driver
// (hvd_qsparse/ops/cupy_ops.py) runs: radix_histogram + radix_pick for passes 0..2, leaving the
// k-th largest key T in the state; select_counts per chunk; chunk_taken; select_compact, which
// writes the taken indices in ascending order. No step reads a result back to the host.
#include "block_ops.cuh"

extern "C" __global__ void radix_histogram(int kind, const float* x, unsigned long long seed, long long n,
                                           int pass, const QsRadixState* state, unsigned long long* hist) {
    __shared__ unsigned local[QS_RADIX_BINS];
    qs_clear_histogram(local, qs_radix_bins(pass));
    QsRadixState st = *state;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x) {
        unsigned key = qs_entry_key(kind, x, seed, i);
        if (qs_in_bucket(key, st, pass)) {
            atomicAdd(&local[qs_radix_digit(key, pass)], 1u);
        }
    }
    qs_flush_histogram(local, qs_radix_bins(pass), hist);
}

extern "C" __global__ void radix_pick(const unsigned long long* hist, int pass, QsRadixState* state) {
    if (blockIdx.x == 0 && threadIdx.x == 0) {
        qs_radix_pick(hist, pass, state);
    }
}

// Per chunk of QS_CHUNK entries: how many keys lie above T and how many equal it.
extern "C" __global__ void select_counts(int kind, const float* x, unsigned long long seed, long long n,
                                         const QsRadixState* state, unsigned long long* above,
                                         unsigned long long* equal) {
    __shared__ unsigned counts[2];
    if (threadIdx.x < 2) {
        counts[threadIdx.x] = 0u;
    }
    __syncthreads();
    unsigned threshold = state->prefix;
    long long first = (long long)blockIdx.x * QS_CHUNK + (long long)threadIdx.x * QS_PER_THREAD;
    unsigned mine[2] = {0u, 0u};
    for (int j = 0; j < QS_PER_THREAD && first + j < n; ++j) {
        int cls = qs_classify(qs_entry_key(kind, x, seed, first + j), threshold);
        if (cls) {
            ++mine[2 - cls];
        }
    }
    if (mine[0]) atomicAdd(&counts[0], mine[0]);
    if (mine[1]) atomicAdd(&counts[1], mine[1]);
    __syncthreads();
    if (threadIdx.x == 0) {
        above[blockIdx.x] = counts[0];
        equal[blockIdx.x] = counts[1];
    }
}

extern "C" __global__ void chunk_taken(const unsigned long long* above, const unsigned long long* equal,
                                       const unsigned long long* equal_before, const QsRadixState* state,
                                       unsigned long long* taken, long long chunks) {
    long long c = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (c < chunks) {
        taken[c] = qs_chunk_taken(above[c], equal[c], equal_before[c], state->remaining);
    }
}

// Writes the taken indices of chunk blockIdx.x at out[offset[chunk] ...], ascending.
extern "C" __global__ void select_compact(int kind, const float* x, unsigned long long seed, long long n,
                                          const QsRadixState* state, const unsigned long long* equal_before,
                                          const unsigned long long* offset, long long* out) {
    __shared__ unsigned long long scratch[QS_CHUNK_THREADS];
    unsigned threshold = state->prefix;
    unsigned long long need = state->remaining;
    long long first = (long long)blockIdx.x * QS_CHUNK + (long long)threadIdx.x * QS_PER_THREAD;
    int cls[QS_PER_THREAD];
    unsigned long long equal = 0;
    for (int j = 0; j < QS_PER_THREAD; ++j) {
        cls[j] = first + j < n ? qs_classify(qs_entry_key(kind, x, seed, first + j), threshold) : 0;
        equal += cls[j] == 1;
    }
    unsigned long long equal_seen = equal_before[blockIdx.x] + qs_block_exclusive_scan(equal, scratch);
    bool take[QS_PER_THREAD];
    unsigned long long count = 0;
    for (int j = 0; j < QS_PER_THREAD; ++j) {
        take[j] = qs_taken(cls[j], equal_seen, need);
        equal_seen += cls[j] == 1;
        count += take[j];
    }
    unsigned long long at = offset[blockIdx.x] + qs_block_exclusive_scan(count, scratch);
    for (int j = 0; j < QS_PER_THREAD; ++j) {
        if (take[j]) {
            out[at++] = first + j;
        }
    }
}
