package agent

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/flightrec/flightrec/agent/sampler"
)

type metrics struct {
	samples   prometheus.Counter
	drain     prometheus.Histogram
	build     prometheus.Histogram
	processes prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer, s *sampler.Sampler) *metrics {
	m := &metrics{
		samples: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "flightrec_agent_samples_drained_total", Help: "CPU samples drained from the ring buffer."}),
		drain: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "flightrec_agent_drain_duration_seconds", Help: "Time to process one drained batch.",
			Buckets: prometheus.ExponentialBuckets(1e-5, 4, 10)}),
		build: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "flightrec_agent_profile_build_duration_seconds", Help: "Time to symbolize an interval and build its profile.",
			Buckets: prometheus.ExponentialBuckets(1e-4, 4, 10)}),
		processes: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "flightrec_agent_processes", Help: "Processes tracked (sampled recently)."}),
	}
	if reg != nil {
		reg.MustRegister(m.samples, m.drain, m.build, m.processes, counterCollector{s})
	}
	return m
}

// counterCollector exports the in-kernel counters at scrape time, so a lost
// sample is visible even when nothing else reads the counters.
type counterCollector struct{ s *sampler.Sampler }

var counterDescs = struct{ samples, lost, stackErrs, filtered, idle *prometheus.Desc }{
	samples:   prometheus.NewDesc("flightrec_agent_bpf_samples_total", "CPU samples the BPF program wrote to the ring buffer.", nil, nil),
	lost:      prometheus.NewDesc("flightrec_agent_bpf_samples_lost_total", "CPU samples dropped because the ring buffer was full.", nil, nil),
	stackErrs: prometheus.NewDesc("flightrec_agent_bpf_stack_errors_total", "Stacks the kernel could not walk.", []string{"space"}, nil),
	filtered:  prometheus.NewDesc("flightrec_agent_bpf_samples_filtered_total", "Samples of processes outside the pid filter.", nil, nil),
	idle:      prometheus.NewDesc("flightrec_agent_bpf_samples_idle_total", "Samples that hit an idle CPU.", nil, nil),
}

func (c counterCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- counterDescs.samples
	ch <- counterDescs.lost
	ch <- counterDescs.stackErrs
	ch <- counterDescs.filtered
	ch <- counterDescs.idle
}

func (c counterCollector) Collect(ch chan<- prometheus.Metric) {
	v, err := c.s.ReadCounters()
	if err != nil {
		ch <- prometheus.NewInvalidMetric(counterDescs.samples, err)
		return
	}
	ch <- prometheus.MustNewConstMetric(counterDescs.samples, prometheus.CounterValue, float64(v.Samples))
	ch <- prometheus.MustNewConstMetric(counterDescs.lost, prometheus.CounterValue, float64(v.Lost))
	ch <- prometheus.MustNewConstMetric(counterDescs.stackErrs, prometheus.CounterValue, float64(v.UserStackErrors), "user")
	ch <- prometheus.MustNewConstMetric(counterDescs.stackErrs, prometheus.CounterValue, float64(v.KernelStackErrors), "kernel")
	ch <- prometheus.MustNewConstMetric(counterDescs.filtered, prometheus.CounterValue, float64(v.Filtered))
	ch <- prometheus.MustNewConstMetric(counterDescs.idle, prometheus.CounterValue, float64(v.Idle))
}
