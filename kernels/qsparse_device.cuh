// The logic of every hvd_qsparse kernel, as __host__ __device__ functions: the __global__
// wrappers in kernels/*.cu only map threads to entries and combine results, so everything that
// decides a selected set, a bit or a level is here, where tests/kernels/host_harness.cu runs it
// on the CPU against the torch reference (hvd_qsparse/ops/reference.py) byte for byte.
//
// Plain C types only (no <cstdint>): NVRTC compiles this without the host's headers.
#pragma once

#define QS_HD __host__ __device__ __forceinline__

// --- counter-based randomness (the same numbers on every device) ---------------------------
// splitmix64 (Steele, Lea and Flood, 2014) evaluated at a counter: draw i of stream `seed` is
// mix(seed + (i + 1) * golden). The torch reference computes the same in int64 arithmetic.
#define QS_GOLDEN 0x9E3779B97F4A7C15ULL

QS_HD unsigned long long qs_mix64(unsigned long long z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

QS_HD unsigned long long qs_draw(unsigned long long seed, long long i) {
    return qs_mix64(seed + ((unsigned long long)i + 1ULL) * QS_GOLDEN);
}

// A uniform float in [0, 1) with 24 random bits: exact in float32 and in float64.
QS_HD float qs_uniform(unsigned long long seed, long long i) {
    return (float)(qs_draw(seed, i) >> 40) * (1.0f / 16777216.0f);
}

// --- selection keys ------------------------------------------------------------------------
// Top-k ranks entries by key, largest first, ties to the lowest index. For top-k the key is
// the bit pattern of |x| (non-negative floats order like their bits); for rand-k it is the
// high 31 bits of draw i, so the k largest keys are k indices uniform without replacement.
#define QS_KEY_MAGNITUDE 0
#define QS_KEY_RANDOM 1

QS_HD unsigned qs_float_bits(float x) {
#ifdef __CUDA_ARCH__
    return __float_as_uint(x);
#else
    union { float f; unsigned u; } pun;
    pun.f = x;
    return pun.u;
#endif
}

QS_HD unsigned qs_magnitude_key(float x) {
    return qs_float_bits(x) & 0x7FFFFFFFu;
}

QS_HD unsigned qs_random_key(unsigned long long seed, long long i) {
    return (unsigned)(qs_draw(seed, i) >> 33);
}

QS_HD unsigned qs_entry_key(int kind, const float* x, unsigned long long seed, long long i) {
    return kind == QS_KEY_MAGNITUDE ? qs_magnitude_key(x[i]) : qs_random_key(seed, i);
}

// Magnitude keys at or above this are Inf or NaN (0x7F800000); digit 0 of it is QS_NONFINITE_BIN.
#define QS_NONFINITE_KEY 0x7F800000u
#define QS_NONFINITE_BIN (QS_NONFINITE_KEY >> 21)

// --- radix select: the k-th largest key in three passes of 11, 11 and 10 bits --------------
#define QS_RADIX_PASSES 3
#define QS_RADIX_BINS 2048

QS_HD int qs_radix_shift(int pass) { return pass == 0 ? 21 : (pass == 1 ? 10 : 0); }
QS_HD unsigned qs_radix_bins(int pass) { return pass == 2 ? 1024u : 2048u; }

QS_HD unsigned qs_radix_digit(unsigned key, int pass) {
    return (key >> qs_radix_shift(pass)) & (qs_radix_bins(pass) - 1u);
}

// Bits fixed by the passes before `pass`.
QS_HD unsigned qs_prefix_mask(int pass) {
    return pass == 0 ? 0u : (0xFFFFFFFFu << qs_radix_shift(pass - 1));
}

// The select's running state: keys above `prefix`'s bucket are all taken; `remaining` more are
// needed from the bucket. After the last pass `prefix` is the k-th largest key T and
// `remaining` is how many entries equal to T are taken (those of lowest index).
// Laid out as two uint64 words (the Python side views it so): prefix in the low half of word 0.
struct QsRadixState {
    unsigned prefix;
    unsigned pad;
    unsigned long long remaining;
};

QS_HD bool qs_in_bucket(unsigned key, const QsRadixState& st, int pass) {
    return (key & qs_prefix_mask(pass)) == st.prefix;
}

// Given the histogram of `pass`'s digit over the bucket's keys, descend into the bin that holds
// the remaining-th largest key.
QS_HD void qs_radix_pick(const unsigned long long* hist, int pass, QsRadixState* st) {
    unsigned long long above = 0;
    for (int bin = (int)qs_radix_bins(pass) - 1; bin >= 0; --bin) {
        if (above + hist[bin] >= st->remaining) {
            st->remaining -= above;
            st->prefix |= (unsigned)bin << qs_radix_shift(pass);
            return;
        }
        above += hist[bin];
    }
}

// Entry classes against the threshold T: 2 above (always taken), 1 equal, 0 below.
QS_HD int qs_classify(unsigned key, unsigned threshold) {
    return key > threshold ? 2 : (key == threshold ? 1 : 0);
}

// The tie rule: an entry equal to T is taken when fewer than `need` equal entries precede it.
QS_HD bool qs_taken(int cls, unsigned long long equal_before, unsigned long long need) {
    return cls == 2 || (cls == 1 && equal_before < need);
}

// Entries taken from a chunk with `above` keys above T and `equal` keys equal to it, when
// `equal_before` equal keys lie in earlier chunks.
QS_HD unsigned long long qs_chunk_taken(unsigned long long above, unsigned long long equal,
                                        unsigned long long equal_before, unsigned long long need) {
    unsigned long long left = need > equal_before ? need - equal_before : 0ULL;
    return above + (left < equal ? left : equal);
}

// Entries per chunk of the compaction (one CUDA block: 256 threads x 4 consecutive entries).
#define QS_CHUNK 1024
#define QS_CHUNK_THREADS 256
#define QS_PER_THREAD 4

// --- bit packing (hvd_qsparse.ops.packing) -------------------------------------------------
// width >= 8: full byte planes, low byte first (plane p of value i at p * count + i), then the
// rest packed at width % 8. width < 8: each group of 8 values fills `width` bytes, value j of
// the group at bit offset j * width, little-endian.
QS_HD long long qs_packed_nbytes(long long count, int width) {
    return count * (width / 8) + (count * (width % 8) + 7) / 8;
}

QS_HD int qs_bit_offset(int j, int width) {
#ifdef QSPARSE_BREAK_LAYOUT
    return (7 - j) * width;  // a wrong layout, compiled only to show that the checks catch one
#else
    return j * width;
#endif
}

// Byte `b` of the packed form of `count` codes of `width` bits; codes(i) gives code i.
template <typename Codes>
QS_HD unsigned char qs_packed_byte(const Codes& codes, long long count, int width, long long b) {
    int planes = width / 8;
    if (b < planes * count) {
        return (unsigned char)((codes(b % count) >> (8 * (b / count))) & 0xFFULL);
    }
    int small = width % 8;
    long long rest = b - planes * count;
    long long group = rest / small;
    int byte_in_group = (int)(rest % small);
    unsigned long long word = 0;
    for (int j = 0; j < 8 && 8 * group + j < count; ++j) {
        unsigned long long low = (codes(8 * group + j) >> (8 * planes)) & ((1ULL << small) - 1ULL);
        word |= low << qs_bit_offset(j, small);
    }
    return (unsigned char)((word >> (8 * byte_in_group)) & 0xFFULL);
}

// Code `i` of `count` codes of `width` bits packed in `data`.
QS_HD unsigned long long qs_unpacked_code(const unsigned char* data, long long count, int width, long long i) {
    int planes = width / 8;
    unsigned long long code = 0;
    for (int p = 0; p < planes; ++p) {
        code |= (unsigned long long)data[p * count + i] << (8 * p);
    }
    int small = width % 8;
    if (small == 0) {
        return code;
    }
    const unsigned char* rest = data + planes * count;
    long long group = i / 8;
    long long end = qs_packed_nbytes(count, width) - planes * count;
    unsigned long long word = 0;
    for (int b = 0; b < small && group * small + b < end; ++b) {
        word |= (unsigned long long)rest[group * small + b] << (8 * b);
    }
    unsigned long long low = (word >> qs_bit_offset((int)(i % 8), small)) & ((1ULL << small) - 1ULL);
    return code | (low << (8 * planes));
}

// --- quantizers ----------------------------------------------------------------------------
// Scaled sign: bit 1 = negative; the value is (1 - 2 * bit) * scale.
QS_HD unsigned long long qs_sign_code(float x) { return x < 0.0f ? 1ULL : 0ULL; }

QS_HD float qs_sign_value(unsigned long long code, float scale) {
    return (1.0f - 2.0f * (float)code) * scale;
}

// QSGD's stochastic level: floor(s|x|/||x||) + [u < frac], clamped to [0, s], in float64 as the
// reference computes it. `levels_over_norm` is s / ||x|| (s / 1 for a zero norm).
QS_HD long long qs_qsgd_level(float x, double levels_over_norm, int levels, float u) {
    double scaled = (double)fabsf(x) * levels_over_norm;
    double lower = floor(scaled);
    double level = lower + ((double)u < scaled - lower ? 1.0 : 0.0);
    level = level < 0.0 ? 0.0 : (level > (double)levels ? (double)levels : level);
    return (long long)level;
}

// From the float64 sum of squares: the fp32 norm sent (float32's largest for a larger norm) and
// s / ||x|| in float64 (s / 1 for a zero norm, so every level is then 0).
QS_HD void qs_qsgd_scale(double sum_squares, int levels, float* norm, double* levels_over_norm) {
    double norm64 = sqrt(sum_squares);
    *norm = (float)(norm64 < 3.4028234663852886e38 ? norm64 : 3.4028234663852886e38);
    *levels_over_norm = (double)levels / (norm64 > 0.0 ? norm64 : 1.0);
}

// Scaled sign's scale ||x||_1 / d from the float64 sum of magnitudes.
QS_HD float qs_sign_scale(double abs_sum, long long count) {
    return (float)(abs_sum / (double)(count > 0 ? count : 1));
}

QS_HD unsigned long long qs_qsgd_code(long long level, float x) {
    return ((unsigned long long)level << 1) | qs_sign_code(x);
}

// The value a QSGD code stands for: level * sign * (||x|| / s), in float32, in that order.
QS_HD float qs_qsgd_value(unsigned long long code, float norm, int levels) {
    float sign = 1.0f - 2.0f * (float)(code & 1ULL);
    return (float)(code >> 1) * sign * (norm / (float)levels);
}

// --- code sources for qs_packed_byte -------------------------------------------------------
struct QsSignCodes {
    const float* x;
    QS_HD unsigned long long operator()(long long i) const { return qs_sign_code(x[i]); }
};

struct QsQsgdCodes {
    const float* x;
    double levels_over_norm;
    int levels;
    unsigned long long seed;
    QS_HD unsigned long long operator()(long long i) const {
        return qs_qsgd_code(qs_qsgd_level(x[i], levels_over_norm, levels, qs_uniform(seed, i)), x[i]);
    }
};

struct QsIntCodes {
    const long long* values;
    QS_HD unsigned long long operator()(long long i) const { return (unsigned long long)values[i]; }
};
