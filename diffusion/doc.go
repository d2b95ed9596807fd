// Package diffusion holds the noise schedules that training and sampling
// share and the samplers that turn a denoiser's eps predictions into latents
// (DESIGN.md 1.1 and 1.7), with diffusers' scheduler API and option names.
//
// Schedule is the forward process over T training timesteps: betas beta_t,
// abar_t = prod_{s<=t} (1 - beta_s), and QSample's
// z_t = sqrt(abar_t) z_0 + sqrt(1 - abar_t) eps, all in float64. Its kinds
// are scaled_linear (the default, 0.00085 to 0.012 over T = 1000), linear
// and cosine (diffusers' squaredcos_cap_v2). Block gives expert i of n its
// timesteps [i*T/n, (i+1)*T/n).
//
// A Scheduler (DDIM or DDPM) is used as in diffusers:
//
//	s, _ := diffusion.NewDDIM(schedule, diffusion.DefaultConfig(), 0) // eta 0
//	s.SetTimesteps(50)                     // num_inference_steps
//	for _, t := range s.Timesteps() {      // descending: 980, 960, ..., 0
//		eps := model(x, t)
//		s.Step(x, eps, t, x, noise)        // x <- x_prev
//	}
//
// Timesteps follow timestep_spacing: leading t_i = (S-1-i)*(T/S) +
// steps_offset (integer division), trailing round(T - i*T/S) - 1, linspace
// round(linspace(0, T-1, S)) reversed. Every step first predicts the clean
// latent x0_hat = (x_t - sqrt(1 - abar_t) eps) / sqrt(abar_t) and never clips
// it (latents are unbounded: diffusers' clip_sample off). Then
//
//   - DDIM (Song et al., eta >= 0, default 0):
//     x_prev = sqrt(abar_prev) x0_hat + sqrt(1 - abar_prev - sigma^2) eps + sigma z,
//     sigma = eta sqrt((1 - abar_prev)/(1 - abar_t)) sqrt(1 - abar_t/abar_prev),
//     with abar_prev at t - T/S as diffusers takes it;
//   - DDPM (ancestral sampling, eta = 1 in DDIM's terms): x_prev is drawn from
//     the posterior q(x_prev | x_t, x0_hat), mean
//     sqrt(abar_prev) beta/(1-abar_t) x0_hat + sqrt(alpha) (1-abar_prev)/(1-abar_t) x_t,
//     variance (1-abar_prev)/(1-abar_t) beta with alpha = abar_t/abar_prev
//     and beta = 1 - alpha between consecutive listed timesteps; no noise at t = 0.
//
// After the last step abar_prev is 1 (set_alpha_to_one, the default) or
// abar_0. Update exposes a step's coefficients (x_prev = X0 x0_hat + Eps eps +
// Sample x_t + Sigma z) and Apply evaluates them in float64 for float32 or
// float64 data. The tests compare every step and the timestep lists with
// diffusers' own DDIMScheduler and DDPMScheduler (tools/diffusion).
package diffusion
