// Runs the __host__ __device__ logic of kernels/qsparse_device.cuh on the CPU, in the order the
// CuPy driver (hvd_qsparse/ops/cupy_ops.py) launches the kernels, so tests/kernels can compare
// every selected set, packed byte and value with the torch reference, byte for byte.
//
// Usage: host_harness OP ARGS... INPUT OUTPUT. INPUT holds the op's raw little-endian arrays
// back to back; OUTPUT receives parts, each an int64 byte length followed by the bytes.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "qsparse_device.cuh"

typedef unsigned long long u64;

static std::vector<char> input;
static FILE* output;

static void part(const void* data, long long nbytes) {
    fwrite(&nbytes, sizeof nbytes, 1, output);
    fwrite(data, 1, (size_t)nbytes, output);
}

template <typename T>
static const T* in_at(long long byte_offset) { return reinterpret_cast<const T*>(input.data() + byte_offset); }

// The driver's radix select: three histogram passes, per-chunk counts, compaction.
static std::vector<long long> select_top(int kind, const float* x, u64 seed, long long n, long long k) {
    std::vector<long long> out;
    if (k >= n) {
        for (long long i = 0; i < n; ++i) out.push_back(i);
        return out;
    }
    QsRadixState st{0u, 0u, (u64)k};
    for (int pass = 0; pass < QS_RADIX_PASSES; ++pass) {
        std::vector<u64> hist(QS_RADIX_BINS, 0);
        for (long long i = 0; i < n; ++i) {
            unsigned key = qs_entry_key(kind, x, seed, i);
            if (qs_in_bucket(key, st, pass)) ++hist[qs_radix_digit(key, pass)];
        }
        qs_radix_pick(hist.data(), pass, &st);
    }
    long long chunks = (n + QS_CHUNK - 1) / QS_CHUNK;
    std::vector<u64> above(chunks, 0), equal(chunks, 0), equal_before(chunks, 0), offset(chunks, 0);
    for (long long i = 0; i < n; ++i) {
        int cls = qs_classify(qs_entry_key(kind, x, seed, i), st.prefix);
        above[i / QS_CHUNK] += cls == 2;
        equal[i / QS_CHUNK] += cls == 1;
    }
    u64 equal_sum = 0, taken_sum = 0;
    for (long long c = 0; c < chunks; ++c) {
        equal_before[c] = equal_sum;
        equal_sum += equal[c];
        offset[c] = taken_sum;
        taken_sum += qs_chunk_taken(above[c], equal[c], equal_before[c], st.remaining);
    }
    out.assign(taken_sum, -1);
    for (long long c = 0; c < chunks; ++c) {
        u64 seen = equal_before[c], at = offset[c];
        for (long long i = c * QS_CHUNK; i < n && i < (c + 1) * QS_CHUNK; ++i) {
            int cls = qs_classify(qs_entry_key(kind, x, seed, i), st.prefix);
            if (qs_taken(cls, seen, st.remaining)) out[at++] = i;
            seen += cls == 1;
        }
    }
    return out;
}

template <typename Codes>
static std::vector<unsigned char> pack(const Codes& codes, long long n, int width) {
    std::vector<unsigned char> out(qs_packed_nbytes(n, width));
    for (long long b = 0; b < (long long)out.size(); ++b) out[b] = qs_packed_byte(codes, n, width, b);
    return out;
}

static int ceil_log2(long long n) {
    int bits = 1;
    while ((1LL << bits) < n) ++bits;
    return bits;
}

// Scaled sign of x[0..n): scale, packed signs, values.
static void sign_parts(const float* x, long long n, std::vector<float>* values) {
    double abs_sum = 0.0;
    for (long long i = 0; i < n; ++i) abs_sum += std::fabs((double)x[i]);
    float scale = qs_sign_scale(abs_sum, n);
    part(&scale, 4);
    std::vector<unsigned char> packed = pack(QsSignCodes{x}, n, 1);
    part(packed.data(), (long long)packed.size());
    values->resize(n);
    for (long long i = 0; i < n; ++i) (*values)[i] = qs_sign_value(qs_sign_code(x[i]), scale);
}

static void qsgd_parts(const float* x, long long n, int levels, u64 seed) {
    double sum_squares = 0.0;
    for (long long i = 0; i < n; ++i) sum_squares += (double)x[i] * (double)x[i];
    float norm;
    double levels_over_norm;
    qs_qsgd_scale(sum_squares, levels, &norm, &levels_over_norm);
    part(&norm, 4);
    QsQsgdCodes codes{x, levels_over_norm, levels, seed};
    std::vector<unsigned char> packed = pack(codes, n, 1 + ceil_log2(levels + 1));
    part(packed.data(), (long long)packed.size());
    std::vector<float> values(n);
    for (long long i = 0; i < n; ++i) values[i] = qs_qsgd_value(codes(i), norm, levels);
    part(values.data(), 4 * n);
}

// Error feedback with top-k (+ sign): u = g + m, select, quantize the kept values, m' = u - D(p).
static void error_feedback(long long n, long long k, const std::string& quantizer) {
    const float* g = in_at<float>(0);
    const float* m = in_at<float>(4 * n);
    std::vector<float> u(n);
    for (long long i = 0; i < n; ++i) u[i] = g[i] + m[i];
    std::vector<long long> idx = select_top(QS_KEY_MAGNITUDE, u.data(), 0, n, k);
    std::vector<float> kept(idx.size()), values;
    for (size_t j = 0; j < idx.size(); ++j) kept[j] = u[idx[j]];
    if (quantizer == "sign") {
        sign_parts(kept.data(), (long long)kept.size(), &values);
    } else {
        part(kept.data(), 4 * (long long)kept.size());
        values = kept;
    }
    std::vector<unsigned char> packed = pack(QsIntCodes{idx.data()}, (long long)idx.size(), ceil_log2(n));
    part(packed.data(), (long long)packed.size());
    for (size_t j = 0; j < idx.size(); ++j) u[idx[j]] -= values[j];
    part(u.data(), 4 * n);
}

static void run(const std::string& op, char** args) {
    long long n = atoll(args[0]);
    if (op == "topk" || op == "randk") {
        long long k = atoll(args[1]);
        u64 seed = op == "randk" ? strtoull(args[2], nullptr, 10) : 0;
        int kind = op == "topk" ? QS_KEY_MAGNITUDE : QS_KEY_RANDOM;
        std::vector<long long> idx = select_top(kind, op == "topk" ? in_at<float>(0) : nullptr, seed, n, k);
        part(idx.data(), 8 * (long long)idx.size());
    } else if (op == "sign") {
        std::vector<float> values;
        sign_parts(in_at<float>(0), n, &values);
        part(values.data(), 4 * n);
    } else if (op == "qsgd") {
        qsgd_parts(in_at<float>(0), n, atoi(args[1]), strtoull(args[2], nullptr, 10));
    } else if (op == "pack") {
        std::vector<unsigned char> packed = pack(QsIntCodes{in_at<long long>(0)}, n, atoi(args[1]));
        part(packed.data(), (long long)packed.size());
    } else if (op == "unpack") {
        std::vector<long long> codes(n);
        for (long long i = 0; i < n; ++i) codes[i] = (long long)qs_unpacked_code(in_at<unsigned char>(0), n, atoi(args[1]), i);
        part(codes.data(), 8 * n);
    } else if (op == "sign_decode" || op == "qsgd_decode") {
        float scale = *in_at<float>(0);
        int levels = op == "qsgd_decode" ? atoi(args[1]) : 0;
        int width = levels ? 1 + ceil_log2(levels + 1) : 1;
        std::vector<float> out(n);
        for (long long i = 0; i < n; ++i) {
            u64 code = qs_unpacked_code(in_at<unsigned char>(4), n, width, i);
            out[i] = levels ? qs_qsgd_value(code, scale, levels) : qs_sign_value(code, scale);
        }
        part(out.data(), 4 * n);
    } else if (op == "scatter") {
        long long count = atoll(args[1]);
        std::vector<float> out(n, 0.0f);
        for (long long j = 0; j < count; ++j) out[in_at<long long>(0)[j]] += in_at<float>(8 * count)[j];
        part(out.data(), 4 * n);
    } else if (op == "ef") {
        error_feedback(n, atoll(args[1]), args[2]);
    } else {
        fprintf(stderr, "host_harness: unknown op %s\n", op.c_str());
        exit(2);
    }
}

int main(int argc, char** argv) {
    if (argc < 5) {
        fprintf(stderr, "usage: host_harness OP ARGS... INPUT OUTPUT\n");
        return 2;
    }
    FILE* in = fopen(argv[argc - 2], "rb");
    if (!in) { perror(argv[argc - 2]); return 2; }
    char buffer[1 << 16];
    size_t got;
    while ((got = fread(buffer, 1, sizeof buffer, in)) > 0) input.insert(input.end(), buffer, buffer + got);
    fclose(in);
    input.resize(input.size() + 16);  // ops with no input (randk) still get a valid pointer
    output = fopen(argv[argc - 1], "wb");
    if (!output) { perror(argv[argc - 1]); return 2; }
    run(argv[1], argv + 2);
    fclose(output);
    return 0;
}
