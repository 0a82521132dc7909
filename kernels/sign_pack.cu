// The bit plane of scaled sign (hvd_qsparse.compression.SignCompressor): byte j holds the signs
// of entries 8j .. 8j+7, entry 8j+i in bit i (1 = negative), which is the layout of
// hvd_qsparse.ops.pack_bits(width=1). One thread per output byte; the last byte's unused bits
// are 0. Loaded by name through hvd_qsparse.ops.kernel_sources; not wired to a backend yet.
extern "C" __global__ void sign_pack(const float* __restrict__ x, unsigned char* __restrict__ out,
                                     long long n) {
    long long j = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    long long first = 8 * j;
    if (first >= n) {
        return;
    }
    unsigned int byte = 0;
    for (int i = 0; i < 8 && first + i < n; ++i) {
        byte |= (unsigned int)(x[first + i] < 0.0f) << i;
    }
    out[j] = (unsigned char)byte;
}
