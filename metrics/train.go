package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/kediff/kediff/train"
)

// Train is the metrics of a kediff train run, set from train.Metrics after
// every step (Observe; hook it into Trainer.OnStep). On a data-parallel job
// only rank 0 reports, for the whole job.
//
//	kediff_train_loss                   loss of the last step (mean over the global batch)
//	kediff_train_grad_norm              gradient norm of the last step, before clipping
//	kediff_train_learning_rate          learning rate of the last step
//	kediff_train_samples_per_second     samples per second over the last step
//	kediff_train_step_duration_seconds  wall time of the last step
//	kediff_train_comm_wait_seconds      time the last step waited on other ranks (0 on one process)
//	kediff_train_step                   the last step's number (counts on from a resumed checkpoint)
//	kediff_train_steps_total            steps this process has run
//	kediff_train_samples_total          samples those steps trained on (global batch x grad_accum each)
//
// The command labels them with run (the --out folder's name) and expert.
type Train struct {
	perStep                                             float64
	loss, gradNorm, lr, samplesPerS, stepS, commS, step prometheus.Gauge
	steps, samples                                      prometheus.Counter
}

// NewTrain registers the training metrics with reg; samplesPerStep is the
// global batch times grad_accum.
func NewTrain(reg prometheus.Registerer, samplesPerStep int) *Train {
	gauge := func(name, help string) prometheus.Gauge {
		return prometheus.NewGauge(prometheus.GaugeOpts{Name: "kediff_train_" + name, Help: help})
	}
	m := &Train{
		perStep:     float64(samplesPerStep),
		loss:        gauge("loss", "Training loss of the last step (the mean over the global batch)."),
		gradNorm:    gauge("grad_norm", "Global gradient L2 norm of the last step, before clipping."),
		lr:          gauge("learning_rate", "Learning rate of the last step."),
		samplesPerS: gauge("samples_per_second", "Training throughput over the last step, in samples per second."),
		stepS:       gauge("step_duration_seconds", "Wall time of the last step in seconds."),
		commS:       gauge("comm_wait_seconds", "Seconds the last step waited on the other ranks (gradient and loss all-reduce not hidden by the backward pass); 0 on one process."),
		step:        gauge("step", "Number of the last step done (a resumed run counts on from its checkpoint)."),
		steps: prometheus.NewCounter(prometheus.CounterOpts{Name: "kediff_train_steps_total",
			Help: "Optimizer steps this process has run."}),
		samples: prometheus.NewCounter(prometheus.CounterOpts{Name: "kediff_train_samples_total",
			Help: "Samples those steps trained on (global batch times grad_accum per step)."}),
	}
	reg.MustRegister(m.loss, m.gradNorm, m.lr, m.samplesPerS, m.stepS, m.commS, m.step, m.steps, m.samples)
	return m
}

// Observe records one step.
func (m *Train) Observe(s train.Metrics) {
	m.loss.Set(s.Loss)
	m.gradNorm.Set(s.GradNorm)
	m.lr.Set(s.LR)
	m.samplesPerS.Set(s.SamplesPerS)
	if s.SamplesPerS > 0 {
		m.stepS.Set(m.perStep / s.SamplesPerS)
	}
	m.commS.Set(s.CommS)
	m.step.Set(float64(s.Step))
	m.steps.Inc()
	m.samples.Add(m.perStep)
}
