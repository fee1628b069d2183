// Element-wise kernels every q4spark CUDA module carries: activations arrive as fp32 (Spark's
// float arrays, Arrow Float4 buffers) holding values of the layer's activation dtype, are
// converted on the device, and results go back as fp32.
#pragma once
#include "q4_device.cuh"

// out[i] = the 16-bit value of in[i] (fp16, or bf16 when bf16 != 0), rounded to nearest even.
extern "C" __global__ void q4_f32_to_half(const float* in, u16* out, unsigned long long n,
                                          int bf16) {
  for (unsigned long long i = blockIdx.x * (unsigned long long)blockDim.x + threadIdx.x; i < n;
       i += (unsigned long long)gridDim.x * blockDim.x) {
    out[i] = bf16 ? f32_to_bf16(in[i]) : f32_to_f16(in[i]);
  }
}

// The ring kernels' activation layout: in (M rows of K fp32 values) as 16-bit values chunk-major,
// 64 k per chunk: 16-byte piece p (k = 64 c + 8 p .. + 7) of row m of chunk c at piece index
// (c * M + m) * 8 + (p ^ (m % 8)), zero past K (up to Kp, a multiple of 64). A stage of
// consecutive chunks is then one contiguous range, and the XOR keeps ldmatrix's eight rows in
// eight bank groups.
extern "C" __global__ void q4_f32_to_half_chunks(const float* in, uint4* out, int M, int K, int Kp,
                                                 int bf16) {
  const unsigned long long pieces = (unsigned long long)M * (Kp / 8);
  for (unsigned long long i = blockIdx.x * (unsigned long long)blockDim.x + threadIdx.x;
       i < pieces; i += (unsigned long long)gridDim.x * blockDim.x) {
    const int q = (int)(i & 7);
    const unsigned long long cm = i >> 3;
    const int m = (int)(cm % M);
    const int c = (int)(cm / M);
    const int k0 = c * 64 + ((q ^ (m & 7)) << 3);
    u32 h[4];
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      u32 pair = 0;
#pragma unroll
      for (int t = 0; t < 2; ++t) {
        const int k = k0 + 2 * j + t;
        const float v = k < K ? in[(size_t)m * K + k] : 0.f;
        pair |= (u32)(bf16 ? f32_to_bf16(v) : f32_to_f16(v)) << (16 * t);
      }
      h[j] = pair;
    }
    out[i] = make_uint4(h[0], h[1], h[2], h[3]);
  }
}

// out[i] = in[i] (fp16, or bf16 when inBf16 != 0) as fp32, rounded once more to bf16 when
// roundBf16 != 0 (W4A8's fp16 result cast to a bf16 model's dtype).
extern "C" __global__ void q4_half_to_f32(const u16* in, float* out, unsigned long long n,
                                          int inBf16, int roundBf16) {
  for (unsigned long long i = blockIdx.x * (unsigned long long)blockDim.x + threadIdx.x; i < n;
       i += (unsigned long long)gridDim.x * blockDim.x) {
    const float v = inBf16 ? bf16_to_f32(in[i]) : f16_to_f32(in[i]);
    out[i] = roundBf16 ? bf16_to_f32(f32_to_bf16(v)) : v;
  }
}

// Act-order: out[m, j] = in[m, perm[j]] for rows of K values, so the weights' rows can be sorted
// by group once at prepare time.
extern "C" __global__ void q4_gather_columns(const float* in, const int* perm, float* out, int M,
                                             int K) {
  const unsigned long long total = (unsigned long long)M * K;
  for (unsigned long long i = blockIdx.x * (unsigned long long)blockDim.x + threadIdx.x;
       i < total; i += (unsigned long long)gridDim.x * blockDim.x) {
    const unsigned long long m = i / K;
    out[i] = in[m * K + perm[i % K]];
  }
}

// Busy-waits `ns` nanoseconds of the GPU's global timer. Benchmarks queue it before a timed run so
// that the host has queued every timed launch before the first one starts: the launches then run
// back to back and the events measure the kernels, not the host's launch rate.
extern "C" __global__ void q4_sleep(unsigned long long ns) {
  unsigned long long start, now;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(start));
  do {
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(now));
  } while (now - start < ns);
}
