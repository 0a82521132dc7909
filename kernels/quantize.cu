// Scaled sign and QSGD (hvd_qsparse.ops.reference's sign_* and qsgd_*), and bit packing of
// integer codes such as top-k's indices: one thread per output byte when packing, one per
// entry when unpacking or computing values. Norms and scales are float64 block sums.
#include "block_ops.cuh"

// *out += sum |x_i| (kind 0) or sum x_i^2 (kind 1), in float64.
extern "C" __global__ void reduce_f64(int kind, const float* x, long long n, double* out) {
    __shared__ double scratch[QS_CHUNK_THREADS];
    double sum = 0.0;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x) {
        double v = (double)x[i];
        sum += kind == 0 ? fabs(v) : v * v;
    }
    qs_block_add(sum, scratch, out);
}

extern "C" __global__ void sign_scale(const double* abs_sum, long long n, float* scale) {
    *scale = qs_sign_scale(*abs_sum, n);
}

extern "C" __global__ void qsgd_scale(const double* sum_squares, int levels, float* norm, double* levels_over_norm) {
    qs_qsgd_scale(*sum_squares, levels, norm, levels_over_norm);
}

extern "C" __global__ void pack_sign(const float* x, long long n, unsigned char* out, long long nbytes) {
    long long b = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (b < nbytes) {
        out[b] = qs_packed_byte(QsSignCodes{x}, n, 1, b);
    }
}

extern "C" __global__ void pack_qsgd(const float* x, long long n, const double* levels_over_norm, int levels,
                                     unsigned long long seed, int width, unsigned char* out, long long nbytes) {
    long long b = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (b < nbytes) {
        out[b] = qs_packed_byte(QsQsgdCodes{x, *levels_over_norm, levels, seed}, n, width, b);
    }
}

extern "C" __global__ void pack_codes(const long long* codes, long long n, int width, unsigned char* out, long long nbytes) {
    long long b = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (b < nbytes) {
        out[b] = qs_packed_byte(QsIntCodes{codes}, n, width, b);
    }
}

extern "C" __global__ void unpack_codes(const unsigned char* data, long long n, int width, long long* out) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) {
        out[i] = (long long)qs_unpacked_code(data, n, width, i);
    }
}

extern "C" __global__ void sign_values(const float* x, long long n, const float* scale, float* out) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) {
        out[i] = qs_sign_value(qs_sign_code(x[i]), *scale);
    }
}

extern "C" __global__ void sign_decode(const unsigned char* data, long long n, const float* scale, float* out) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) {
        out[i] = qs_sign_value(qs_unpacked_code(data, n, 1, i), *scale);
    }
}

extern "C" __global__ void qsgd_values(const float* x, long long n, const double* levels_over_norm, int levels,
                                       unsigned long long seed, const float* norm, float* out) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) {
        QsQsgdCodes codes{x, *levels_over_norm, levels, seed};
        out[i] = qs_qsgd_value(codes(i), *norm, levels);
    }
}

extern "C" __global__ void qsgd_decode(const unsigned char* data, long long n, int width, const float* norm,
                                       int levels, float* out) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) {
        out[i] = qs_qsgd_value(qs_unpacked_code(data, n, width, i), *norm, levels);
    }
}
