// W4A16 for many rows: the weights are dequantized once per call into a dense fp16/bf16 matrix,
// which cuBLAS then multiplies (CudaW4A16Kernel's dequant-GEMM path). At a few hundred rows and
// more the GEMM is compute-bound, and Hopper's dense GEMM (wgmma, TMA) outruns the mma.sync
// kernel by 3x; writing 2 bytes per weight once costs about as much as reading the fp16 weights
// once, a small fraction of the GEMM there. (vLLM's AWQ layer switches to dequantize + matmul at
// 256 tokens for the same reason.)
//
// W[k][n - n0], row-major with row stride ldw, for the layout's k positions (act-order: the sorted
// rows) and the columns n0 <= n < n0 + 64 gridDim.x of one slab (n0 = 64 strip0)
// = round_act((code(k, n) - zero) * scale(k / G, n)): the product is exact in fp32 (a 5-bit
// integer times an 11-bit significand), so converting it rounds once, as the reference does.
// CudaDequantGemm runs it once over all strips (strip0 = 0, ldw = Np), or, where a schedule asks
// for column slabs, once per slab into a slab-wide scratch.
#pragma once
#include "q4_device.cuh"

// One block = 4 warps = a 64 k x 64 n tile; warp w decodes the k16 step kt = 4 blockIdx.y + w of
// column strip strip0 + blockIdx.x from its 32 x 16 bytes (CudaW4A16Layout), through shared memory
// so that the tile leaves as 64 rows of 128 contiguous bytes.
template <bool BF16, bool ZP>
__device__ __forceinline__ void dequantize_tile(const uint4* __restrict__ words,
                                                const u16* __restrict__ scales,
                                                const u16* __restrict__ zeros, u16* __restrict__ W,
                                                int Kp, int Np, int G, int strip0, int ldw) {
  __shared__ __align__(16) u16 tile[64][64 + 8];  // +8: rows start in different bank groups
  const int strip = strip0 + blockIdx.x, warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int kt = blockIdx.y * 4 + warp;
  const uint4 q = words[((size_t)strip * (Kp / 16) + kt) * 32 + lane];
  const u32 w[4] = {q.x, q.y, q.z, q.w};
  const float magic = BF16 ? 128.f : 1024.f;
  // When G is a multiple of 16 the warp's 16 k share one group: each thread then loads the scale
  // (and zero) of its 8 columns once, not once per weight.
  const bool oneGroup = G % 16 == 0;
  const int g0 = 16 * kt / G;
#pragma unroll
  for (int p = 0; p < 4; p++) {
#pragma unroll
    for (int h = 0; h < 2; h++) {
      const int n = 8 * (2 * p + h) + lane / 4;  // column within the strip
      const size_t col = 64 * strip + (n % 8) * 8 + n / 8;
      float scale = 0.f, zero = 8.f;
      if (oneGroup) {
        scale = half_to_f32<BF16>(scales[g0 * (size_t)Np + col]);
        if (ZP) zero = half_to_f32<BF16>(zeros[g0 * (size_t)Np + col]) - magic;
      }
#pragma unroll
      for (int j = 0; j < 4; j++) {
        const int r = 2 * h + (j & 1) + 4 * (j >> 1);  // the nibbles of this column's 4 k
        const int kl = 2 * (lane % 4) + ((r & 1) ? 8 : 0) + (r >= 4 ? 1 : 0);
        if (!oneGroup) {
          const size_t at = (size_t)((16 * kt + kl) / G) * Np + col;
          scale = half_to_f32<BF16>(scales[at]);
          if (ZP) zero = half_to_f32<BF16>(zeros[at]) - magic;
        }
        // 2^23 + code as a float's bits, minus 2^23: the code, exactly, without an I2F.
        const float code = __uint_as_float(0x4B000000u | ((w[p] >> (4 * r)) & 0xFu)) - 8388608.f;
        tile[warp * 16 + kl][n] = f32_to_half<BF16>((code - zero) * scale);
      }
    }
  }
  __syncthreads();
  // 64 rows x 8 chunks of 16 bytes: 4 chunks per thread.
  for (int c = threadIdx.x; c < 64 * 8; c += blockDim.x) {
    const int row = c / 8, chunk = c % 8;
    const uint4 v = *reinterpret_cast<const uint4*>(&tile[row][chunk * 8]);
    const size_t at = (size_t)(blockIdx.y * 64 + row) * ldw + 64 * blockIdx.x + chunk * 8;
    *reinterpret_cast<uint4*>(&W[at]) = v;
  }
}

#define Q4_DEQUANT(NAME, BF16, ZP)                                                                 \
  extern "C" __global__ void __launch_bounds__(128)                                                \
      NAME(const uint4* words, const u16* scales, const u16* zeros, u16* W, int Kp, int Np,      \
           int G, int strip0, int ldw) {                                                           \
    dequantize_tile<BF16, ZP>(words, scales, zeros, W, Kp, Np, G, strip0, ldw);                    \
  }
Q4_DEQUANT(q4_w4a16_dequant_f16_sym, false, false)
Q4_DEQUANT(q4_w4a16_dequant_f16_zp, false, true)
Q4_DEQUANT(q4_w4a16_dequant_bf16_sym, true, false)
Q4_DEQUANT(q4_w4a16_dequant_bf16_zp, true, true)

// out[m, n] = round_act(out[m, n] + bias[n]): the reference adds the bias to the rounded product
// and rounds again. out is [M, N] 16-bit, bias N fp32 values (already of the activation dtype).
extern "C" __global__ void q4_add_bias_half(u16* out, const float* bias, int M, int N, int bf16) {
  const unsigned long long total = (unsigned long long)M * N;
  for (unsigned long long i = blockIdx.x * (unsigned long long)blockDim.x + threadIdx.x;
       i < total; i += (unsigned long long)gridDim.x * blockDim.x) {
    const float b = bias[i % N];
    out[i] = bf16 ? f32_to_bf16(bf16_to_f32(out[i]) + b) : f32_to_f16(f16_to_f32(out[i]) + b);
  }
}
