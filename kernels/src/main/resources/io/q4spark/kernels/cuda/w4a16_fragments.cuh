// W4A16 weights as tensor-core A fragments: one 32-bit word of CudaW4A16Layout (8 codes of one
// n16 tile for one k16 step, see w4a16_gemm.cu) dequantized into the four A registers of an
// m16n8k16 mma, or of one warp's 16 rows of a Hopper wgmma (m64nNk16 with A from registers: warp w
// of the warpgroup holds rows 16 w .. 16 w + 15 in the same layout). Used by the small-M, ring and
// wgmma kernels.
#pragma once
#include "q4_device.cuh"

// Dequantizes word q (8 codes of n16 tile p) into the four A registers, rounding d * scale once to
// the 16-bit type as the reference does. sg / sg8: the scales of rows g and g + 8 in both halves;
// zg / zg8: magic + zero of those rows; zgHi / zg8Hi: -(64 + zero), for fp16's high nibbles, which
// are read 16 times too large (mask 0x00F0) and scaled back exactly by fma(x, 1/16, -(64 + zero)).
template <bool BF16>
__device__ __forceinline__ void dequant(u32 q, u32 sg, u32 sg8, u32 zg, u32 zg8, u32 zgHi,
                                        u32 zg8Hi, u32* a) {
  const u32 magic = magic2<BF16>();
  if (BF16) {
    // bf16's 7 mantissa bits cannot hold 16 x code: every nibble pair is shifted down first.
    a[0] = mul2<true>(sub2<true>(and_or(q, 0x000F000Fu, magic), zg), sg);
    a[2] = mul2<true>(sub2<true>(and_or(q >> 4, 0x000F000Fu, magic), zg), sg);
    a[1] = mul2<true>(sub2<true>(and_or(q >> 8, 0x000F000Fu, magic), zg8), sg8);
    a[3] = mul2<true>(sub2<true>(and_or(q >> 12, 0x000F000Fu, magic), zg8), sg8);
  } else {
    const u32 sixteenth = 0x2C002C00u;  // fp16 1/16
    const u32 q8 = q >> 8;
    a[0] = mul2<false>(sub2<false>(and_or(q, 0x000F000Fu, magic), zg), sg);
    a[2] = mul2<false>(fma2_f16(and_or(q, 0x00F000F0u, magic), sixteenth, zgHi), sg);
    a[1] = mul2<false>(sub2<false>(and_or(q8, 0x000F000Fu, magic), zg8), sg8);
    a[3] = mul2<false>(fma2_f16(and_or(q8, 0x00F000F0u, magic), sixteenth, zg8Hi), sg8);
  }
}

// The zero-point operands of dequant for one pair of rows (g, g + 8): magic + zero and, for fp16's
// high nibbles, -(64 + zero) = 960 - (1024 + zero) (exact), from `pair` (magic + zero of each row,
// as CudaW4A16Layout stores them); for symmetric weights zero is 8 and `pair` is not read.
template <bool BF16, bool ZP>
__device__ __forceinline__ void zero_operands(u32 pair, u32& zg, u32& zg8, u32& zgHi, u32& zg8Hi) {
  zg = zg8 = BF16 ? 0x43084308u : 0x64086408u;  // magic + 8
  zgHi = zg8Hi = 0xD480D480u;                   // fp16 -(64 + 8)
  if (ZP) {
    zg = splat_half<0>(pair);
    zg8 = splat_half<1>(pair);
    if (!BF16) {
      zgHi = sub2<false>(0x63806380u, zg);
      zg8Hi = sub2<false>(0x63806380u, zg8);
    }
  }
}
