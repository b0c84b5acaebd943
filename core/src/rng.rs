//! Randomness: the seeded generator cellos ships and the normal sampler all noise goes through.
//!
//! Nothing in cellos draws from global state. Every function that needs randomness takes a
//! `&mut impl RngCore` from its caller; [`SimRng`] is the generator we use by default, seeded from a
//! `u64`. The samplers use only integer arithmetic and `libm` (a pure-Rust maths library), so a seed
//! gives the same bits on every platform.

use rand_core::{RngCore, SeedableRng};

/// The generator cellos uses for simulation noise: PCG-64 (MCG variant), 128 bits of state.
pub type SimRng = rand_pcg::Pcg64Mcg;

/// A [`SimRng`] seeded from a `u64`, the way every cellos seed is written down.
pub fn seeded(seed: u64) -> SimRng {
    SimRng::seed_from_u64(seed)
}

/// A uniform draw in the open interval (0, 1), with 52 bits of precision.
pub fn uniform_open01<R: RngCore + ?Sized>(rng: &mut R) -> f64 {
    // 52 random bits, offset by half a step, so that neither 0 nor 1 can come out: the largest value is
    // 1 − 2⁻⁵³, which f64 represents exactly (with 53 bits, the half step would round up to 1.0).
    let bits = rng.next_u64() >> 12;
    (bits as f64 + 0.5) * (1.0 / (1u64 << 52) as f64)
}

/// A standard normal draw (mean 0, standard deviation 1), by the Box–Muller transform.
///
/// Each call consumes exactly two `u64`s from the generator, which keeps the stream position a pure
/// function of the number of draws: callers can reason about which draw a reading used.
pub fn standard_normal<R: RngCore + ?Sized>(rng: &mut R) -> f64 {
    let u1 = uniform_open01(rng);
    let u2 = uniform_open01(rng);
    libm::sqrt(-2.0 * libm::log(u1)) * libm::cos(core::f64::consts::TAU * u2)
}

/// A normal draw with the given mean and standard deviation.
pub fn normal<R: RngCore + ?Sized>(rng: &mut R, mean: f64, sd: f64) -> f64 {
    mean + sd * standard_normal(rng)
}

/// A multiplicative noise factor `ε ~ Normal(1, cv)`, the form every readout and treatment uses.
pub fn noise_factor<R: RngCore + ?Sized>(rng: &mut R, cv: f64) -> f64 {
    normal(rng, 1.0, cv)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_bits() {
        let mut a = seeded(42);
        let mut b = seeded(42);
        for _ in 0..100 {
            assert_eq!(standard_normal(&mut a).to_bits(), standard_normal(&mut b).to_bits());
        }
    }

    #[test]
    fn different_seeds_differ() {
        let mut a = seeded(1);
        let mut b = seeded(2);
        assert_ne!(standard_normal(&mut a), standard_normal(&mut b));
    }

    #[test]
    fn pinned_stream() {
        // Pinned bits: a change of generator, sampler or maths library shows up here, not as drifting
        // science. The same bits must come out on every platform (libm is pure Rust).
        let mut rng = seeded(7);
        let bits = [0xbfeb_43ff_8772_36be_u64, 0x3ff7_787a_47ab_d00b, 0x3fd4_31cf_7f4c_76a0];
        for expected in bits {
            assert_eq!(standard_normal(&mut rng).to_bits(), expected);
        }
    }

    #[test]
    fn uniform_stays_open() {
        struct Fixed(u64);
        impl RngCore for Fixed {
            fn next_u32(&mut self) -> u32 {
                self.0 as u32
            }
            fn next_u64(&mut self) -> u64 {
                self.0
            }
            fn fill_bytes(&mut self, dst: &mut [u8]) {
                dst.fill(0);
            }
        }
        let lo = uniform_open01(&mut Fixed(0));
        let hi = uniform_open01(&mut Fixed(u64::MAX));
        assert!(lo > 0.0 && lo < 1e-15);
        assert!(hi < 1.0 && hi > 1.0 - 1e-15);
    }

    #[test]
    fn moments_of_normal() {
        let mut rng = seeded(2024);
        let n = 200_000;
        let (mut s, mut s2) = (0.0, 0.0);
        for _ in 0..n {
            let x = normal(&mut rng, 3.0, 0.5);
            s += x;
            s2 += x * x;
        }
        let mean = s / n as f64;
        let var = s2 / n as f64 - mean * mean;
        assert!((mean - 3.0).abs() < 0.005, "mean {mean}");
        assert!((var.sqrt() - 0.5).abs() < 0.005, "sd {}", var.sqrt());
    }
}
