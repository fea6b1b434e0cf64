// AVX-512F vector math on 16 floats for the attention kernels (backends/cpu, files compiled with -mavx2
// -mfma; every function carries its own avx512f target and runs only after the CPU check).
#pragma once

#include <immintrin.h>

namespace seqrun::backends::cpu::vec512 {

// vec::exp (avx2_math.h) on 16 lanes: the same Cody-Waite reduction and degree-7 Taylor polynomial; 2^n is
// applied by scalef, which rounds denormal results and overflows to inf like the two-factor AVX2 form.
__attribute__((target("avx512f"))) inline __m512 exp(__m512 x) {
  x = _mm512_min_ps(_mm512_set1_ps(89.0f), _mm512_max_ps(_mm512_set1_ps(-104.0f), x));
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
  static constexpr float kTaylor[] = {1.0f,         1.0f,          0.5f,          1.0f / 6.0f,
                                      1.0f / 24.0f, 1.0f / 120.0f, 1.0f / 720.0f, 1.0f / 5040.0f};
  __m512 p = _mm512_set1_ps(kTaylor[7]);
  for (int i = 6; i >= 0; --i) p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(kTaylor[i]));
  return _mm512_scalef_ps(p, n);
}

}  // namespace seqrun::backends::cpu::vec512
