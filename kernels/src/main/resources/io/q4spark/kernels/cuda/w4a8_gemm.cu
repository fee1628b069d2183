// W4A8 on tensor cores, with the semantics of q4spark's scalar W4A8 reference (vLLM's
// XPUW4A8IntLinearKernel):
//
//   xs, qx        per-token int8 quantization of each row (q4_w4a8_quantize_*)
//   isum(g, n)    = sum over k in group g of qx[k] * (code(k, n) - 8)      exact int32
//   v             = xs * sum over g of isum(g, n) * ws(g, n) + bias[n]      fp32 here
//   out           = round_fp16(v)                                           fp16 output
//
// The integer mma multiplies signed int8 activations by the UNSIGNED 4-bit codes (s8 x u8,
// m16n8k32), so the weights need one AND to become B fragments; the "- 8" is folded out per group:
// isum(g, n) = sum qx * code - 8 * sum over the group of qx, and the quantize kernel stores that
// second term (8 * the group's code sum per row) beside the codes.
//
// Weight layout, 32-bit words:
//   word(strip, kt, lane, j) at ((strip * Kp / 32 + kt) * 32 + lane) * 8 + j
//     strip = n / 64, kt = k / 32, lane = 0..31, j = 0..7 (the n8 tile)
//   nibble r of the word holds code(k, n) with
//     n = 64 strip + 8 j + lane / 4
//     k = 32 kt + 4 (lane % 4) + (r >> 1) + (r & 1 ? 16 : 0)
// so (word & 0x0F0F0F0F) and ((word >> 4) & 0x0F0F0F0F) are the two B registers (k and k + 16) of
// n8 tile j. Weight scales are fp32 [groups, Np], each 64-column strip permuted so a lane's sixteen
// accumulator columns (8 j + 2 (lane % 4) + e) are contiguous: column c at
// ((c % 8) / 2) * 16 + (c / 8) * 2 + c % 2.

#include "q4_convert.cuh"
#include "q4_device.cuh"

namespace w4a8 {

constexpr int BK = 128;        // k per stage: four m16n8k32 steps, one 128-byte row of int8 codes
constexpr int STRIP = 64;      // columns per warp
constexpr int SCALE_ROWS = 4;  // groups a 128-k stage can touch when G >= 32
constexpr int STAGES = 4;      // cp.async pipeline depth

template <int WARPS_M, int WARPS_N, int MI>
struct Tile {
  static constexpr int BM = 16 * MI * WARPS_M;
  static constexpr int BN = STRIP * WARPS_N;
  static constexpr int THREADS = 32 * WARPS_M * WARPS_N;
  static constexpr int A_BYTES = BM * BK;
  static constexpr int B_BYTES = WARPS_N * (BK / 32) * 1024;
  static constexpr int S_BYTES = SCALE_ROWS * BN * 4;
  static constexpr int STAGE_BYTES = A_BYTES + B_BYTES + S_BYTES;
  static constexpr int SMEM_BYTES = STAGE_BYTES * STAGES;
};

template <int KIND>  // 0 fp16, 1 bf16, 2 fp32
__device__ __forceinline__ float round_act(float v) {
  return KIND == 0 ? f16_to_f32(f32_to_f16(v)) : KIND == 1 ? bf16_to_f32(f32_to_bf16(v)) : v;
}

// NaN-propagating max of |v|: a NaN in a row must make that row's output NaN, as in the reference.
__device__ __forceinline__ float absmax_step(float m, float v) {
  const float a = fabsf(v);
  return (a > m || a != a) ? a : m;
}

// One block per row: rowScale[m] (fp32 holding a value of the activation dtype), codes [M, Kp]
// (zero past K) and rowCorrection [M, groups] = 8 * the sum of the group's codes.
template <int KIND>
__device__ __forceinline__ void quantize(const float* __restrict__ x, s8* __restrict__ codes,
                                         int* __restrict__ rowCorrection,
                                         float* __restrict__ rowScale, int K, int Kp, int G,
                                         int groups) {
  __shared__ float warpMax[32];
  const int m = blockIdx.x;
  const size_t row = (size_t)m * K;
  float mx = 0.f;
  // Activations arrive as fp32 not yet rounded to the activation dtype (an Arrow buffer's values):
  // round each on read, as the reference rounds them before quantizing (a no-op on rounded values).
  for (int k = threadIdx.x; k < K; k += blockDim.x) mx = absmax_step(mx, round_act<KIND>(x[row + k]));
  for (int o = 16; o > 0; o >>= 1) mx = absmax_step(mx, __shfl_xor_sync(0xFFFFFFFFu, mx, o));
  if ((threadIdx.x & 31) == 0) warpMax[threadIdx.x >> 5] = mx;
  __syncthreads();
  if (threadIdx.x < 32) {
    float v = threadIdx.x < (blockDim.x >> 5) ? warpMax[threadIdx.x] : 0.f;
    for (int o = 16; o > 0; o >>= 1) v = absmax_step(v, __shfl_xor_sync(0xFFFFFFFFu, v, o));
    if (threadIdx.x == 0) warpMax[0] = v;
  }
  __syncthreads();
  const float absmax = warpMax[0];
  // fp32 division, then one rounding to the activation dtype; fmaxf would drop a NaN.
  const float q = absmax / 127.f;
  const float scale = round_act<KIND>(q > 1e-5f || q != q ? q : 1e-5f);
  if (threadIdx.x == 0) rowScale[m] = scale;
  // One warp per group at a time: codes and the group's code sum.
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, warps = blockDim.x >> 5;
  for (int g = warp; g < groups; g += warps) {
    int sum = 0;
    for (int k = g * G + lane; k < (g + 1) * G && k < Kp; k += 32) {
      int c = 0;
      if (k < K) {
        const float r = rintf(round_act<KIND>(x[row + k]) / scale);
        c = (int)fmaxf(-128.f, fminf(127.f, r));  // NaN -> 0, as Java's (byte) cast
        if (r != r) c = 0;
      }
      codes[(size_t)m * Kp + k] = (s8)c;
      sum += c;
    }
    for (int o = 16; o > 0; o >>= 1) sum += __shfl_xor_sync(0xFFFFFFFFu, sum, o);
    if (lane == 0) rowCorrection[(size_t)m * groups + g] = 8 * sum;
  }
}

template <int WARPS_M, int WARPS_N, int MI>
__device__ __forceinline__ void gemm(const s8* __restrict__ A, const int* __restrict__ rowCorrection,
                                     const float* __restrict__ rowScale,
                                     const u32* __restrict__ B, const float* __restrict__ S,
                                     const float* __restrict__ bias,
                                     u16* __restrict__ C, float* __restrict__ partial,
                                     int* __restrict__ counters, int M, int N, int Np, int Kp,
                                     int G, int groups, int ktilesPerSplit) {
  typedef Tile<WARPS_M, WARPS_N, MI> T;
  extern __shared__ __align__(16) unsigned char smem[];

  const int tid = threadIdx.x;
  const int lane = tid & 31;
  const int warp = tid >> 5;
  const int warpM = warp / WARPS_N;
  const int warpN = warp % WARPS_N;
  const int nStrips = Np / STRIP;
  const int strip0 = blockIdx.x * WARPS_N;
  const int m0 = blockIdx.y * T::BM;
  const int kTiles = Kp / BK;
  const int kt0 = blockIdx.z * ktilesPerSplit;
  const int kt1 = min(kTiles, kt0 + ktilesPerSplit);
  const int nT = kt1 - kt0;
  const bool warpActive = strip0 + warpN < nStrips && m0 + warpM * 16 * MI < M;
  const u64 policy = l2_evict_first();
  const u32 smemBase = smem_u32(smem);

  auto loadStage = [&](int kt, int stage) {
    const u32 aBase = smemBase + stage * T::STAGE_BYTES;
    for (int c = tid; c < T::BM * 8; c += T::THREADS) {
      const int row = c >> 3, chunk = c & 7;
      const int m = m0 + row;
      const bool ok = m < M;
      cp_async16_zfill(aBase + swizzle128(row, chunk),
                       ok ? A + (size_t)m * Kp + kt * BK + chunk * 16 : A, ok);
    }
    const u32 bBase = aBase + T::A_BYTES;
    // Per strip: four k32 steps x 32 lanes x 32 bytes = 256 chunks of 16 bytes, contiguous.
    for (int c = tid; c < WARPS_N * 256; c += T::THREADS) {
      const int s = c >> 8, r = c & 255;
      if (strip0 + s < nStrips) {
        const u32* src = B + ((size_t)(strip0 + s) * (Kp / 32) + kt * 4) * 256 + r * 4;
        cp_async16_hint(bBase + c * 16, src, policy);
      }
    }
    const u32 sBase = bBase + T::B_BYTES;
    const int g0 = kt * BK / G;
    const int rows = min((kt * BK + BK - 1) / G, groups - 1) - g0 + 1;
    for (int c = tid; c < rows * WARPS_N * 16; c += T::THREADS) {
      const int row = c / (WARPS_N * 16), q = c % (WARPS_N * 16);
      const int s = q >> 4, chunk = q & 15;
      if (strip0 + s < nStrips) {
        const size_t src = (size_t)(g0 + row) * Np + (strip0 + s) * STRIP + chunk * 4;
        cp_async16(sBase + (row * T::BN + s * STRIP + chunk * 4) * 4, S + src);
      }
    }
  };

  float acc[MI][8][4];
  int iacc[MI][8][4];
#pragma unroll
  for (int i = 0; i < MI; ++i)
#pragma unroll
    for (int j = 0; j < 8; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        acc[i][j][e] = 0.f;
        iacc[i][j][e] = 0;
      }

#pragma unroll
  for (int s = 0; s < STAGES - 1; ++s) {
    if (s < nT) loadStage(kt0 + s, s);
    cp_async_commit();
  }

  for (int i = 0; i < nT; ++i) {
    cp_async_wait<STAGES - 2>();
    __syncthreads();
    const int next = i + STAGES - 1;
    if (next < nT) loadStage(kt0 + next, next % STAGES);
    cp_async_commit();
    if (!warpActive) continue;

    const int kt = kt0 + i;
    const int stage = i % STAGES;
    const unsigned char* base = smem + stage * T::STAGE_BYTES;
    const u32 aBase = smemBase + stage * T::STAGE_BYTES;
    const uint4* wq = reinterpret_cast<const uint4*>(base + T::A_BYTES) + warpN * 256;
    const float* sc = reinterpret_cast<const float*>(base + T::A_BYTES + T::B_BYTES);
    const int g0 = kt * BK / G;
    // Two register sets: step ks + 1 is read from shared memory while step ks computes.
    u32 a[2][MI][4];
    uint4 w[2][2];
    auto load = [&](int ks, int buf) {
#pragma unroll
      for (int mi = 0; mi < MI; ++mi) {
        const int row = warpM * 16 * MI + mi * 16 + (lane & 15);
        ldmatrix_x4(a[buf][mi], aBase + swizzle128(row, ks * 2 + (lane >> 4)));
      }
      w[buf][0] = wq[(ks * 32 + lane) * 2];
      w[buf][1] = wq[(ks * 32 + lane) * 2 + 1];
    };
    load(0, 0);
#pragma unroll
    for (int ks = 0; ks < BK / 32; ++ks) {
      const int buf = ks & 1;
      if (ks + 1 < BK / 32) load(ks + 1, buf ^ 1);
      const int k = kt * BK + ks * 32;
      const u32 words[8] = {w[buf][0].x, w[buf][0].y, w[buf][0].z, w[buf][0].w,
                            w[buf][1].x, w[buf][1].y, w[buf][1].z, w[buf][1].w};
#pragma unroll
      for (int j = 0; j < 8; ++j) {
        const u32 b0 = words[j] & 0x0F0F0F0Fu;
        const u32 b1 = (words[j] >> 4) & 0x0F0F0F0Fu;
#pragma unroll
        for (int mi = 0; mi < MI; ++mi) mma_m16n8k32_s8u8(iacc[mi][j], a[buf][mi], b0, b1);
      }
      // Close the group after its last k32 step: exact int32 sum, minus 8 * code sum, times
      // the group's weight scale, into the fp32 accumulators.
      const bool groupEnd = (k + 32) % G == 0 || k + 32 >= Kp;
      if (groupEnd) {
        const int g = k / G;
        const float* s16 = sc + (g - g0) * T::BN + warpN * STRIP + (lane & 3) * 16;
        float ws[16];
#pragma unroll
        for (int q = 0; q < 4; ++q) {
          const float4 v = reinterpret_cast<const float4*>(s16)[q];
          ws[4 * q] = v.x;
          ws[4 * q + 1] = v.y;
          ws[4 * q + 2] = v.z;
          ws[4 * q + 3] = v.w;
        }
#pragma unroll
        for (int mi = 0; mi < MI; ++mi) {
          const int r0 = m0 + warpM * 16 * MI + mi * 16 + (lane >> 2);
          const int c0 = r0 < M ? rowCorrection[(size_t)r0 * groups + g] : 0;
          const int c1 = r0 + 8 < M ? rowCorrection[(size_t)(r0 + 8) * groups + g] : 0;
#pragma unroll
          for (int j = 0; j < 8; ++j) {
            acc[mi][j][0] += (float)(iacc[mi][j][0] - c0) * ws[2 * j];
            acc[mi][j][1] += (float)(iacc[mi][j][1] - c0) * ws[2 * j + 1];
            acc[mi][j][2] += (float)(iacc[mi][j][2] - c1) * ws[2 * j];
            acc[mi][j][3] += (float)(iacc[mi][j][3] - c1) * ws[2 * j + 1];
#pragma unroll
            for (int e = 0; e < 4; ++e) iacc[mi][j][e] = 0;
          }
        }
      }
    }
  }
  cp_async_wait<0>();

  const bool split = gridDim.z > 1;
  if (warpActive) {
#pragma unroll
    for (int mi = 0; mi < MI; ++mi) {
#pragma unroll
      for (int j = 0; j < 8; ++j) {
        const int col = (strip0 + warpN) * STRIP + j * 8 + (lane & 3) * 2;
        if (col >= N) continue;
#pragma unroll
        for (int h = 0; h < 2; ++h) {
          const int row = m0 + warpM * 16 * MI + mi * 16 + (lane >> 2) + h * 8;
          if (row >= M) continue;
          float v0 = acc[mi][j][2 * h], v1 = acc[mi][j][2 * h + 1];
          if (split) {
            *reinterpret_cast<float2*>(partial + ((size_t)blockIdx.z * M + row) * N + col) =
                make_float2(v0, v1);
          } else {
            const float xs = rowScale[row];
            v0 *= xs;
            v1 *= xs;
            if (bias != nullptr) {
              v0 += bias[col];
              v1 += bias[col + 1];
            }
            *reinterpret_cast<u32*>(C + (size_t)row * N + col) =
                (u32)f32_to_f16(v0) | ((u32)f32_to_f16(v1) << 16);
          }
        }
      }
    }
  }
  if (!split) return;
  if (!split_k_last_block(counters + blockIdx.y * gridDim.x + blockIdx.x, gridDim.z)) return;
  // The last split for this tile: add the partial sums in split order, then scale, bias, round.
  const int n0 = strip0 * STRIP;
  for (int c = tid; c < T::BM * T::BN; c += T::THREADS) {
    const int row = m0 + c / T::BN, col = n0 + c % T::BN;
    if (row >= M || col >= N) continue;
    float sum = 0.f;
    for (int s = 0; s < (int)gridDim.z; ++s) sum += ld_global_cg(partial + ((size_t)s * M + row) * N + col);
    float v = sum * rowScale[row];
    if (bias != nullptr) v += bias[col];
    C[(size_t)row * N + col] = f32_to_f16(v);
  }
}

}  // namespace w4a8

// x: fp32 rows holding values of the activation dtype; act: 0 fp16, 1 bf16, 2 fp32 (the dtype the
// row scale is rounded to). Launch one block per row.
extern "C" __global__ void q4_w4a8_quantize(const float* x, s8* codes, int* rowCorrection,
                                            float* rowScale, int K, int Kp, int G, int groups,
                                            int act) {
  if (act == 0) {
    w4a8::quantize<0>(x, codes, rowCorrection, rowScale, K, Kp, G, groups);
  } else if (act == 1) {
    w4a8::quantize<1>(x, codes, rowCorrection, rowScale, K, Kp, G, groups);
  } else {
    w4a8::quantize<2>(x, codes, rowCorrection, rowScale, K, Kp, G, groups);
  }
}

// Entry points: q4_w4a8_<tile>. The bias holds fp32 values of the activation dtype; the output is
// always fp16, as the reference's oneDNN op. Split-K (gridDim.z > 1) needs `partial` (splits x M x
// N fp32) and `counters` (one int per output tile, zero before the first call); splits must hold
// whole groups.
#define Q4_W4A8_KERNEL(NAME, WM, WN, MI)                                                    \
  extern "C" __global__ void __launch_bounds__(32 * WM * WN)                                \
      NAME(const s8* A, const int* rowCorrection, const float* rowScale, const u32* B,      \
           const float* S, const float* bias, u16* C, float* partial, int* counters, int M, \
           int N, int Np, int Kp, int G, int groups, int ktilesPerSplit) {                  \
    w4a8::gemm<WM, WN, MI>(A, rowCorrection, rowScale, B, S, bias, C, partial, counters, M, \
                           N, Np, Kp, G, groups, ktilesPerSplit);                           \
  }

Q4_W4A8_KERNEL(q4_w4a8_small, 1, 4, 1)
Q4_W4A8_KERNEL(q4_w4a8_large, 2, 4, 2)
