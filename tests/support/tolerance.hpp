// Named tolerances, each with its reason. |got - want| <= absolute + relative * |want|.
#pragma once

namespace test {

struct Tolerance {
  double absolute;
  double relative;
};

namespace tolerance {
inline constexpr Tolerance exact{0, 0};                    // relu, gather, copies: nothing to round
inline constexpr Tolerance simd_vs_reference{1e-6, 1e-5};  // lane order and FMA change the rounding
inline constexpr Tolerance transcendental{2e-6, 2e-6};     // tanh, exp, erf: our polynomials vs libm
inline constexpr Tolerance pytorch_parity{1e-5, 0};        // the float32 promise to users
}  // namespace tolerance

}  // namespace test
