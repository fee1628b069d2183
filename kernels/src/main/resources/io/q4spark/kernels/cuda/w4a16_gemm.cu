// W4A16 GEMM on tensor cores: C[M, N] = A[M, K] * W[K, N], A in fp16 or bf16, W as 4-bit codes
// with per-group 16-bit scales (and optional zero points), dequantized in registers:
//
//   d   = code(k, n) - zero(g, n)          exact: (magic + code) - (magic + zero)
//   w   = round_act(d * scale(g, n))       one rounding, as q4spark's scalar reference
//   acc = sum over k of A[m, k] * w        fp32 tensor-core accumulation (m16n8k16 mma)
//   C   = round_act(acc), then round_act(C + bias[n]) when there is a bias
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
// Tiling: a block has WARPS_M x WARPS_N warps; a warp computes (16 MI) rows x 64 columns; a stage
// holds 64 k of A (128-byte rows, XOR-swizzled for ldmatrix), the weights of the block's strips and
// the scale rows of the groups it touches, copied with cp.async in a STAGES-deep pipeline; weights
// carry an L2 evict-first hint (they are read once per call). Split-K (gridDim.z > 1) writes fp32
// partial sums that q4_w4a16_reduce adds in split order.

#include "q4_convert.cuh"
#include "q4_device.cuh"

namespace w4a16 {

constexpr int BK = 64;          // k per pipeline stage: four m16n8k16 steps, one 128-byte A row
constexpr int STRIP = 64;       // columns per warp: one 16-byte weight load per lane per k16
constexpr int SCALE_ROWS = 4;   // groups one 64-k stage can touch when G >= 16
constexpr int STAGES = 4;       // cp.async pipeline depth: enough bytes in flight to hide HBM latency

template <int WARPS_M, int WARPS_N, int MI, bool ZP>
struct Tile {
  static constexpr int BM = 16 * MI * WARPS_M;
  static constexpr int BN = STRIP * WARPS_N;
  static constexpr int THREADS = 32 * WARPS_M * WARPS_N;
  static constexpr int A_BYTES = BM * BK * 2;
  static constexpr int B_BYTES = WARPS_N * (BK / 16) * 512;
  static constexpr int S_BYTES = SCALE_ROWS * BN * 2;
  static constexpr int STAGE_BYTES = A_BYTES + B_BYTES + S_BYTES * (ZP ? 2 : 1);
  static constexpr int SMEM_BYTES = STAGE_BYTES * STAGES;
};

template <int WARPS_M, int WARPS_N, int MI, bool BF16, bool ZP>
__device__ __forceinline__ void gemm(const u16* __restrict__ A, const u32* __restrict__ B,
                                     const u16* __restrict__ S, const u16* __restrict__ Z,
                                     const u16* __restrict__ bias, u16* __restrict__ C,
                                     float* __restrict__ partial, int M, int N, int Np, int K,
                                     int Kp, int G, int ktilesPerSplit) {
  typedef Tile<WARPS_M, WARPS_N, MI, ZP> T;
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
      const int m = m0 + row, k = kt * BK + chunk * 8;
      const bool ok = m < M && k < K;
      cp_async16_zfill(aBase + swizzle128(row, chunk), ok ? A + (size_t)m * K + k : A, ok);
    }
    const u32 bBase = aBase + T::A_BYTES;
    for (int c = tid; c < WARPS_N * 128; c += T::THREADS) {
      const int s = c >> 7, r = c & 127;
      if (strip0 + s < nStrips) {
        const u32* src = B + ((size_t)(strip0 + s) * (Kp / 16) + kt * 4) * 128 + r * 4;
        cp_async16_hint(bBase + c * 16, src, policy);
      }
    }
    const u32 sBase = bBase + T::B_BYTES;
    const int g0 = kt * BK / G;
    const int rows = (kt * BK + BK - 1) / G - g0 + 1;
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
    const uint4* wq = reinterpret_cast<const uint4*>(base + T::A_BYTES) + warpN * 128;
    const u16* sc = reinterpret_cast<const u16*>(base + T::A_BYTES + T::B_BYTES);
    const int g0 = kt * BK / G;
#pragma unroll
    for (int ks = 0; ks < BK / 16; ++ks) {
      const int srow = (kt * BK + ks * 16) / G - g0;
      const int soff = srow * T::BN + warpN * STRIP + (lane >> 2) * 8;
      const uint4 s8 = *reinterpret_cast<const uint4*>(sc + soff);
      uint4 z8;
      if (ZP) z8 = *reinterpret_cast<const uint4*>(sc + T::S_BYTES / 2 + soff);
      const uint4 w = wq[ks * 32 + lane];

      u32 a[MI][4];
#pragma unroll
      for (int mi = 0; mi < MI; ++mi) {
        const int row = warpM * 16 * MI + mi * 16 + (lane & 15);
        ldmatrix_x4(a[mi], aBase + swizzle128(row, ks * 2 + (lane >> 4)));
      }
      const u32 words[4] = {w.x, w.y, w.z, w.w};
      const u32 scalePairs[4] = {s8.x, s8.y, s8.z, s8.w};
      u32 zeroPairs[4];
      if (ZP) {
        zeroPairs[0] = z8.x;
        zeroPairs[1] = z8.y;
        zeroPairs[2] = z8.z;
        zeroPairs[3] = z8.w;
      }
#pragma unroll
      for (int p = 0; p < 4; ++p) {
        // n8 tiles 2p (low scale half) and 2p + 1 (high half) share scalePairs[p].
#pragma unroll
        for (int t = 0; t < 2; ++t) {
          const int j = 2 * p + t;
          const u32 scale = splat2(scalePairs[p] >> (16 * t));
          const u32 zero = ZP ? splat2(zeroPairs[p] >> (16 * t)) : symmetricZero;
          const u32 q0 = ((words[p] >> (8 * t)) & 0x000F000Fu) | magic2<BF16>();
          const u32 q1 = ((words[p] >> (8 * t + 4)) & 0x000F000Fu) | magic2<BF16>();
          const u32 b0 = mul2<BF16>(sub2<BF16>(q0, zero), scale);
          const u32 b1 = mul2<BF16>(sub2<BF16>(q1, zero), scale);
#pragma unroll
          for (int mi = 0; mi < MI; ++mi) mma_m16n8k16<BF16>(acc[mi][j], a[mi], b0, b1);
        }
      }
    }
  }
  cp_async_wait<0>();

  if (!warpActive) return;
  const bool split = gridDim.z > 1;
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
          float2* dst = reinterpret_cast<float2*>(partial + ((size_t)blockIdx.z * M + row) * N + col);
          *dst = make_float2(v0, v1);
        } else {
          u16 y0 = f32_to_half<BF16>(v0), y1 = f32_to_half<BF16>(v1);
          if (bias != nullptr) {
            y0 = f32_to_half<BF16>(half_to_f32<BF16>(y0) + half_to_f32<BF16>(bias[col]));
            y1 = f32_to_half<BF16>(half_to_f32<BF16>(y1) + half_to_f32<BF16>(bias[col + 1]));
          }
          *reinterpret_cast<u32*>(C + (size_t)row * N + col) = (u32)y0 | ((u32)y1 << 16);
        }
      }
    }
  }
}

// Sums the split-K partial sums in split order, then rounds as the unsplit epilogue does.
template <bool BF16>
__device__ __forceinline__ void reduce(const float* __restrict__ partial,
                                       const u16* __restrict__ bias, u16* __restrict__ C, int M,
                                       int N, int splits) {
  const size_t total = (size_t)M * N;
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < total;
       i += (size_t)gridDim.x * blockDim.x) {
    float acc = 0.f;
    for (int s = 0; s < splits; ++s) acc += partial[s * total + i];
    u16 y = f32_to_half<BF16>(acc);
    if (bias != nullptr) y = f32_to_half<BF16>(half_to_f32<BF16>(y) + half_to_f32<BF16>(bias[i % N]));
    C[i] = y;
  }
}

}  // namespace w4a16

// Entry points: q4_w4a16_<tile>_<f16|bf16>_<sym|zp>. Tiles: small (16 x 256, for M <= 16, with
// split-K), medium (64 x 256) and large (128 x 256, eight warps).
#define Q4_W4A16_KERNEL(NAME, WM, WN, MI, BF16, ZP)                                               \
  extern "C" __global__ void __launch_bounds__(32 * WM * WN) NAME(                                \
      const u16* A, const u32* B, const u16* S, const u16* Z, const u16* bias, u16* C,            \
      float* partial, int M, int N, int Np, int K, int Kp, int G, int ktilesPerSplit) {          \
    w4a16::gemm<WM, WN, MI, BF16, ZP>(A, B, S, Z, bias, C, partial, M, N, Np, K, Kp, G,           \
                                      ktilesPerSplit);                                            \
  }

#define Q4_W4A16_TILE(TILE, WM, WN, MI)                                \
  Q4_W4A16_KERNEL(q4_w4a16_##TILE##_f16_sym, WM, WN, MI, false, false) \
  Q4_W4A16_KERNEL(q4_w4a16_##TILE##_f16_zp, WM, WN, MI, false, true)   \
  Q4_W4A16_KERNEL(q4_w4a16_##TILE##_bf16_sym, WM, WN, MI, true, false) \
  Q4_W4A16_KERNEL(q4_w4a16_##TILE##_bf16_zp, WM, WN, MI, true, true)

Q4_W4A16_TILE(small, 1, 4, 1)
Q4_W4A16_TILE(medium, 1, 4, 4)
Q4_W4A16_TILE(large, 2, 4, 4)

extern "C" __global__ void q4_w4a16_reduce_f16(const float* partial, const u16* bias, u16* C,
                                               int M, int N, int splits) {
  w4a16::reduce<false>(partial, bias, C, M, N, splits);
}

extern "C" __global__ void q4_w4a16_reduce_bf16(const float* partial, const u16* bias, u16* C,
                                                int M, int N, int splits) {
  w4a16::reduce<true>(partial, bias, C, M, N, splits);
}
