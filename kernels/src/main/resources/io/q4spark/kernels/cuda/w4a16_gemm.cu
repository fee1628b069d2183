// W4A16 GEMM on tensor cores: C[M, N] = A[M, K] * W[K, N], A in fp16 or bf16, W as 4-bit codes
// with per-group 16-bit scales (and optional zero points), dequantized in registers:
//
//   d   = code(k, n) - zero(g, n)          exact: (magic + code) - (magic + zero)
//   w   = round_act(d * scale(g, n))       one rounding, as q4spark's scalar reference
//   acc = sum over k of A[m, k] * w        fp32 tensor-core accumulation (m16n8k16 mma)
//   C   = round_act(acc), then round_act(C + bias[n]) when there is a bias (bias: fp32 values of
//         the activation dtype)
//
// Weight layout ("mma layout", written by CudaW4A16Layout on the host), in 32-bit words:
//
//   word(strip, kt, lane, p) at ((strip * Kp / 16 + kt) * 32 + lane) * 4 + p
//     strip = n / 64 (64 columns), kt = k / 16, lane = 0..31, p = 0..3 (a pair of n8 tiles)
//   nibble r of the word (r = 0..7, (word >> 4r) & 15) holds code(k, n) with
//     n  = 64 strip + 8 (2p + (r >> 1 & 1)) + lane / 4
//     k  = 16 kt + 2 (lane % 4) + (r & 1 ? 8 : 0) + (r >= 4 ? 1 : 0)
//
// so that ((word >> 4r) & 0x000F000F) for r = 0..3 are exactly the four B-fragment registers of
// the two n8 tiles 2p, 2p+1 (low half: even k, high half: k + 1), and a warp reads its 64 columns
// x 16 k as one 16-byte load per lane. Scales and zero points are [groups, Np] 16-bit values with
// each 64-column strip permuted so a lane's eight columns (j * 8 + lane / 4, j = 0..7) are
// contiguous: column c of a strip is stored at (c % 8) * 8 + c / 8. Zero points are stored as
// magic + zero (ready to subtract); the symmetric kernels subtract magic + 8 instead.
//
// Tiling: a block has WARPS_M x WARPS_N x WARPS_K warps; a warp computes (16 MI) rows x 64 columns
// over the k16 steps of its k group (WARPS_K > 1: the warps of a column strip share a stage's K
// and add their sums through shared memory at the end); a stage
// holds 64 k of A (128-byte rows, XOR-swizzled for ldmatrix), the weights of the block's strips and
// the scale rows of the groups it touches, copied with cp.async in a STAGES-deep pipeline; weights
// carry an L2 evict-first hint (they are read once per call). A warp reads step ks + 1 of a stage
// into a second register set while it computes step ks. Split-K (gridDim.z > 1) writes fp32
// partial sums, which the last block to finish an output tile adds in split order.

#include "q4_convert.cuh"
#include "q4_device.cuh"
#include "q4_dequant.cuh"

namespace w4a16 {

constexpr int STRIP = 64;  // columns per warp: one 16-byte weight load per lane per k16

template <int WARPS_M, int WARPS_N, int WARPS_K, int MI, int BK, int STAGES, bool ZP>
struct Tile {
  // Without a k split inside the block, stages must be full: K is padded to 64 only.
  static_assert(WARPS_K > 1 || BK == 64, "a WARPS_K == 1 tile runs whole 64-k stages");
  static constexpr int BM = 16 * MI * WARPS_M;
  static constexpr int BN = STRIP * WARPS_N;
  static constexpr int THREADS = 32 * WARPS_M * WARPS_N * WARPS_K;
  static constexpr int STEPS = BK / 16;       // m16n8k16 steps per stage
  static constexpr int A_ROW = BK * 2;        // bytes of one A row in a stage
  static constexpr int A_CHUNKS = BK / 8;     // 16-byte chunks per A row
  static constexpr int SCALE_ROWS = STEPS;    // groups a stage can touch (G >= 16)
  static constexpr int A_BYTES = BM * A_ROW;
  static constexpr int B_BYTES = WARPS_N * STEPS * 512;
  static constexpr int S_BYTES = SCALE_ROWS * BN * 2;
  static constexpr int STAGE_BYTES = A_BYTES + B_BYTES + S_BYTES * (ZP ? 2 : 1);
  static constexpr int SMEM_BYTES = STAGE_BYTES * STAGES;
  // Intra-block split-K: warps 1.. of each k group park their accumulators here at the end.
  static constexpr int REDUCE_BYTES = (WARPS_K - 1) * WARPS_M * WARPS_N * MI * 32 * 32 * 4;
  static_assert(REDUCE_BYTES <= SMEM_BYTES, "the reduction reuses the pipeline's shared memory");
  static_assert(STEPS % WARPS_K == 0, "each warp of a k group takes whole steps");
};

// Offset of 16-byte chunk `chunk` of row `row` in an A stage of `rowBytes`-byte rows, XOR-swizzled
// on the chunk's low three bits so the eight rows an ldmatrix phase reads hit eight bank groups.
__device__ __forceinline__ u32 swizzle(int row, int chunk, int rowBytes) {
  return (u32)(row * rowBytes + ((chunk ^ (row & 7)) << 4));
}

// One k16 step's operands of one warp, in registers.
template <int MI>
struct Fragments {
  u32 a[MI][4];
  uint4 w;
  uint4 s;
  uint4 z;
};

template <int WARPS_M, int WARPS_N, int WARPS_K, int MI, int BK, int STAGES, bool BF16, bool ZP>
__device__ __forceinline__ void gemm(const u16* __restrict__ A, const u32* __restrict__ B,
                                     const u16* __restrict__ S, const u16* __restrict__ Z,
                                     const float* __restrict__ bias, u16* __restrict__ C,
                                     float* __restrict__ partial, int* __restrict__ counters,
                                     int M, int N, int Np, int K, int Kp, int G,
                                     int ktilesPerSplit) {
  typedef Tile<WARPS_M, WARPS_N, WARPS_K, MI, BK, STAGES, ZP> T;
  extern __shared__ __align__(16) unsigned char smem[];

  const int tid = threadIdx.x;
  const int lane = tid & 31;
  const int warp = tid >> 5;
  const int warpK = warp / (WARPS_M * WARPS_N);  // which k16 steps of a stage this warp takes
  const int warpMN = warp % (WARPS_M * WARPS_N);
  const int warpM = warpMN / WARPS_N;
  const int warpN = warpMN % WARPS_N;
  const int nStrips = Np / STRIP;
  const int strip0 = blockIdx.x * WARPS_N;
  const int m0 = blockIdx.y * T::BM;
  const int steps16 = Kp / 16;                    // k16 steps in the (64-padded) weights
  const int kTiles = (Kp + BK - 1) / BK;          // the last stage may be partial
  const int kt0 = blockIdx.z * ktilesPerSplit;
  const int kt1 = min(kTiles, kt0 + ktilesPerSplit);
  const int nT = kt1 - kt0;
  const bool warpActive = strip0 + warpN < nStrips && m0 + warpM * 16 * MI < M;
  const int rowsValid = min(T::BM, M - m0);       // A rows past M stay zero: never loaded
  const u64 policy = l2_evict_first();
  const u32 smemBase = smem_u32(smem);
  // The group of global k16 step `step`: a shift when G / 16 is a power of two (G = 32 ... 256),
  // else a division (a full-K group of another size).
  const int stepsPerGroup = G / 16;
  const int groupShift =
      (stepsPerGroup & (stepsPerGroup - 1)) == 0 ? __ffs(stepsPerGroup) - 1 : -1;
  auto groupOfStep = [&](int step) {
    return groupShift >= 0 ? step >> groupShift : step / stepsPerGroup;
  };

  for (int c = tid; c < STAGES * (T::BM - rowsValid) * T::A_CHUNKS; c += T::THREADS) {
    const int perStage = (T::BM - rowsValid) * T::A_CHUNKS;
    const int stage = c / perStage, r = c % perStage;
    const int row = rowsValid + r / T::A_CHUNKS, chunk = r % T::A_CHUNKS;
    st_shared_zero16(smemBase + stage * T::STAGE_BYTES + swizzle(row, chunk, T::A_ROW));
  }

  auto loadStage = [&](int kt, int stage) {
    const u32 aBase = smemBase + stage * T::STAGE_BYTES;
    for (int c = tid; c < rowsValid * T::A_CHUNKS; c += T::THREADS) {
      const int row = c / T::A_CHUNKS, chunk = c % T::A_CHUNKS;
      const int k = kt * BK + chunk * 8;
      const bool ok = k < K;
      cp_async16_zfill(aBase + swizzle(row, chunk, T::A_ROW),
                       ok ? A + (size_t)(m0 + row) * K + k : A, ok);
    }
    const u32 bBase = aBase + T::A_BYTES;
    const int firstStep = kt * T::STEPS;
    for (int c = tid; c < WARPS_N * T::STEPS * 32; c += T::THREADS) {
      const int s = c / (T::STEPS * 32), r = c % (T::STEPS * 32);
      if (strip0 + s < nStrips && firstStep + r / 32 < steps16) {
        const u32* src = B + ((size_t)(strip0 + s) * steps16 + firstStep) * 128 + r * 4;
        cp_async16_hint(bBase + c * 16, src, policy);
      }
    }
    const u32 sBase = bBase + T::B_BYTES;
    const int g0 = groupOfStep(kt * T::STEPS);
    const int rows = groupOfStep(min(kt * T::STEPS + T::STEPS, steps16) - 1) - g0 + 1;
    for (int c = tid; c < rows * WARPS_N * 8; c += T::THREADS) {
      const int row = c / (WARPS_N * 8), q = c % (WARPS_N * 8);
      const int s = q >> 3, chunk = q & 7;
      if (strip0 + s < nStrips) {
        const size_t src = (size_t)(g0 + row) * Np + (strip0 + s) * STRIP + chunk * 8;
        const u32 dst = sBase + (row * T::BN + s * STRIP + chunk * 8) * 2;
        cp_async16(dst, S + src);
        if (ZP) cp_async16(dst + T::S_BYTES, Z + src);
      }
    }
  };

  float acc[MI][8][4];
#pragma unroll
  for (int i = 0; i < MI; ++i)
#pragma unroll
    for (int j = 0; j < 8; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) acc[i][j][e] = 0.f;

#pragma unroll
  for (int s = 0; s < STAGES - 1; ++s) {
    if (s < nT) loadStage(kt0 + s, s);
    cp_async_commit();
  }

  const u32 symmetricZero = splat2(BF16 ? 0x4308u : 0x6408u);  // magic + 8

  // Shared memory -> registers for k16 step ks of a stage; srow: its scale row in the stage.
  auto loadFragments = [&](Fragments<MI>& f, u32 aBase, const unsigned char* base, int srow,
                           int ks) {
    const uint4* wq = reinterpret_cast<const uint4*>(base + T::A_BYTES) + warpN * T::STEPS * 32;
    const u16* sc = reinterpret_cast<const u16*>(base + T::A_BYTES + T::B_BYTES);
    const int soff = srow * T::BN + warpN * STRIP + (lane >> 2) * 8;
    f.s = *reinterpret_cast<const uint4*>(sc + soff);
    if (ZP) f.z = *reinterpret_cast<const uint4*>(sc + T::S_BYTES / 2 + soff);
    f.w = wq[ks * 32 + lane];
#pragma unroll
    for (int mi = 0; mi < MI; ++mi) {
      const int row = warpM * 16 * MI + mi * 16 + (lane & 15);
      ldmatrix_x4(f.a[mi], aBase + swizzle(row, ks * 2 + (lane >> 4), T::A_ROW));
    }
  };

  // Dequantize one k16 step's weights in registers and run its mma's.
  auto compute = [&](const Fragments<MI>& f) {
    const u32 words[4] = {f.w.x, f.w.y, f.w.z, f.w.w};
    const u32 scalePairs[4] = {f.s.x, f.s.y, f.s.z, f.s.w};
    const u32 zeroPairs[4] = {f.z.x, f.z.y, f.z.z, f.z.w};
#pragma unroll
    for (int p = 0; p < 4; ++p) {
      // n8 tiles 2p (low half of the pair) and 2p + 1 (high half).
#pragma unroll
      for (int t = 0; t < 2; ++t) {
        const int j = 2 * p + t;
        const u32 scale = t == 0 ? splat_half<0>(scalePairs[p]) : splat_half<1>(scalePairs[p]);
        const u32 zero = !ZP ? symmetricZero
                         : t == 0 ? splat_half<0>(zeroPairs[p])
                                  : splat_half<1>(zeroPairs[p]);
        const u32 q0 = ((words[p] >> (8 * t)) & 0x000F000Fu) | magic2<BF16>();
        const u32 q1 = ((words[p] >> (8 * t + 4)) & 0x000F000Fu) | magic2<BF16>();
        const u32 b0 = mul2<BF16>(sub2<BF16>(q0, zero), scale);
        const u32 b1 = mul2<BF16>(sub2<BF16>(q1, zero), scale);
#pragma unroll
        for (int mi = 0; mi < MI; ++mi) mma_m16n8k16<BF16>(acc[mi][j], f.a[mi], b0, b1);
      }
    }
  };

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
    const int g0 = groupOfStep(kt * T::STEPS);
    const int stepsHere = min(T::STEPS, steps16 - kt * T::STEPS);
    if (WARPS_K == 1) {
      // Two register sets: step ks + 1 is read from shared memory while step ks computes. The
      // large tile's stages are always full (K is padded to its 64), so no bounds checks here.
      Fragments<MI> f[2];
      f[0].z = f[1].z = make_uint4(0, 0, 0, 0);
      loadFragments(f[0], aBase, base, 0, 0);
#pragma unroll
      for (int ks = 0; ks < T::STEPS; ++ks) {
        if (ks + 1 < T::STEPS) {
          loadFragments(f[(ks + 1) & 1], aBase, base, groupOfStep(kt * T::STEPS + ks + 1) - g0,
                        ks + 1);
        }
        compute(f[ks & 1]);
      }
    } else if (stepsHere == T::STEPS) {
      // Each of the WARPS_K warps of a column strip takes every WARPS_K-th k16 step. A full stage
      // has no bounds checks, so the steps' loads and dequantization chains interleave (ILP).
      Fragments<MI> f[T::STEPS / WARPS_K];
#pragma unroll
      for (int q = 0; q < T::STEPS / WARPS_K; ++q) {
        const int ks = q * WARPS_K + warpK;
        f[q].z = make_uint4(0, 0, 0, 0);
        loadFragments(f[q], aBase, base, groupOfStep(kt * T::STEPS + ks) - g0, ks);
      }
#pragma unroll
      for (int q = 0; q < T::STEPS / WARPS_K; ++q) compute(f[q]);
    } else {
#pragma unroll
      for (int q = 0; q < T::STEPS / WARPS_K; ++q) {
        const int ks = q * WARPS_K + warpK;
        if (ks >= stepsHere) break;
        Fragments<MI> f;
        f.z = make_uint4(0, 0, 0, 0);
        loadFragments(f, aBase, base, groupOfStep(kt * T::STEPS + ks) - g0, ks);
        compute(f);
      }
    }
  }
  cp_async_wait<0>();

  if (WARPS_K > 1) {
    // Intra-block split-K: warps with warpK > 0 park their sums in shared memory (element e of
    // lane l at e * 32 + l: conflict-free), warp group 0 adds them in warpK order.
    __syncthreads();
    float* red = reinterpret_cast<float*>(smem);
    constexpr int E = MI * 32;
    if (warpK > 0 && warpActive) {
      float* mine = red + ((warpK - 1) * WARPS_M * WARPS_N + warpMN) * E * 32;
#pragma unroll
      for (int mi = 0; mi < MI; ++mi)
#pragma unroll
        for (int j = 0; j < 8; ++j)
#pragma unroll
          for (int e = 0; e < 4; ++e) mine[((mi * 8 + j) * 4 + e) * 32 + lane] = acc[mi][j][e];
    }
    __syncthreads();
    if (warpK == 0 && warpActive) {
      for (int w = 1; w < WARPS_K; ++w) {
        const float* theirs = red + ((w - 1) * WARPS_M * WARPS_N + warpMN) * E * 32;
#pragma unroll
        for (int mi = 0; mi < MI; ++mi)
#pragma unroll
          for (int j = 0; j < 8; ++j)
#pragma unroll
            for (int e = 0; e < 4; ++e) acc[mi][j][e] += theirs[((mi * 8 + j) * 4 + e) * 32 + lane];
      }
    }
  }

  const bool split = gridDim.z > 1;
  if (warpActive && warpK == 0) {
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
          const float v0 = acc[mi][j][2 * h], v1 = acc[mi][j][2 * h + 1];
          if (split) {
            *reinterpret_cast<float2*>(partial + ((size_t)blockIdx.z * M + row) * N + col) =
                make_float2(v0, v1);
          } else {
            u16 y0 = f32_to_half<BF16>(v0), y1 = f32_to_half<BF16>(v1);
            if (bias != nullptr) {
              y0 = f32_to_half<BF16>(half_to_f32<BF16>(y0) + bias[col]);
              y1 = f32_to_half<BF16>(half_to_f32<BF16>(y1) + bias[col + 1]);
            }
            *reinterpret_cast<u32*>(C + (size_t)row * N + col) = (u32)y0 | ((u32)y1 << 16);
          }
        }
      }
    }
  }
  if (!split) return;
  if (!split_k_last_block(counters + blockIdx.y * gridDim.x + blockIdx.x, gridDim.z)) return;
  // The last split for this tile: add the partial sums in split order, round, add the bias.
  const int n0 = strip0 * STRIP;
  for (int c = tid; c < T::BM * T::BN; c += T::THREADS) {
    const int row = m0 + c / T::BN, col = n0 + c % T::BN;
    if (row >= M || col >= N) continue;
    float sum = 0.f;
    for (int s = 0; s < (int)gridDim.z; ++s) sum += ld_global_cg(partial + ((size_t)s * M + row) * N + col);
    u16 y = f32_to_half<BF16>(sum);
    if (bias != nullptr) y = f32_to_half<BF16>(half_to_f32<BF16>(y) + bias[col]);
    C[(size_t)row * N + col] = y;
  }
}

}  // namespace w4a16

// Entry points: q4_w4a16_<tile>_<f16|bf16>_<sym|zp>. Split-K (gridDim.z > 1) needs `partial` (splits x M x N
// fp32) and `counters` (one int per output tile, zero before the first call).
#define Q4_W4A16_KERNEL(NAME, WM, WN, WK, MI, BK, ST, BF16, ZP)                                   \
  extern "C" __global__ void __launch_bounds__(32 * WM * WN * WK) NAME(                           \
      const u16* A, const u32* B, const u16* S, const u16* Z, const float* bias, u16* C,          \
      float* partial, int* counters, int M, int N, int Np, int K, int Kp, int G,                  \
      int ktilesPerSplit) {                                                                        \
    w4a16::gemm<WM, WN, WK, MI, BK, ST, BF16, ZP>(A, B, S, Z, bias, C, partial, counters, M, N,    \
                                              Np, K, Kp, G, ktilesPerSplit);                     \
  }

#define Q4_W4A16_TILE(TILE, WM, WN, WK, MI, BK, ST)                                \
  Q4_W4A16_KERNEL(q4_w4a16_##TILE##_f16_sym, WM, WN, WK, MI, BK, ST, false, false) \
  Q4_W4A16_KERNEL(q4_w4a16_##TILE##_f16_zp, WM, WN, WK, MI, BK, ST, false, true)   \
  Q4_W4A16_KERNEL(q4_w4a16_##TILE##_bf16_sym, WM, WN, WK, MI, BK, ST, true, false) \
  Q4_W4A16_KERNEL(q4_w4a16_##TILE##_bf16_zp, WM, WN, WK, MI, BK, ST, true, true)

// small: 16 x 64 with 256-k stages, four warps taking turns over a stage's sixteen k16 steps, three
// stages (bandwidth-bound: each block keeps 16 KiB of weights in flight and spends its per-stage
// overhead on 8 KiB; 55 KiB of shared memory lets four blocks share an SM); medium: 64 x 64, the
// same; large: 128 x 256 with 64-k stages, eight warps tiling M and N, four stages.
Q4_W4A16_TILE(small, 1, 1, 4, 1, 256, 3)
Q4_W4A16_TILE(medium, 1, 1, 4, 4, 256, 3)
Q4_W4A16_TILE(large, 2, 4, 1, 4, 64, 4)
