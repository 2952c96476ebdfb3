package agent

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/flightrec/flightrec/agent/sampler"
)

type metrics struct {
	samples       prometheus.Counter
	offCPU        prometheus.Counter
	unknownStacks prometheus.Counter
	events        *prometheus.CounterVec
	hookDropped   prometheus.Counter
	snapshots     *prometheus.CounterVec
	drain         prometheus.Histogram
	build         prometheus.Histogram
	processes     prometheus.Gauge
	stacks        prometheus.Gauge
	stacksEvicted prometheus.Counter
	evictedSeen   uint64 // the cache's eviction count already added
}

func newMetrics(reg prometheus.Registerer, s *sampler.Sampler) *metrics {
	m := &metrics{
		samples: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "flightrec_agent_samples_drained_total", Help: "CPU samples drained from the ring buffer."}),
		offCPU: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "flightrec_agent_offcpu_intervals_drained_total", Help: "Off-CPU intervals drained from the ring buffer."}),
		unknownStacks: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "flightrec_agent_offcpu_unknown_stacks_total",
			Help: "Off-CPU intervals whose blocking stack was lost or evicted, attributed to [unknown stack]."}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flightrec_agent_process_events_total", Help: "Process events drained, by kind."}, []string{"kind"}),
		hookDropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "flightrec_agent_event_hook_dropped_total", Help: "Process events not handed to the event consumer because it was behind."}),
		snapshots: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flightrec_agent_snapshots_built_total", Help: "Flight recorder snapshots built, by outcome (ok, error)."}, []string{"outcome"}),
		drain: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "flightrec_agent_drain_duration_seconds", Help: "Time to process one drained batch.",
			Buckets: prometheus.ExponentialBuckets(1e-5, 4, 10)}),
		build: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "flightrec_agent_profile_build_duration_seconds", Help: "Time to symbolize an interval and build its profile.",
			Buckets: prometheus.ExponentialBuckets(1e-4, 4, 10)}),
		processes: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "flightrec_agent_processes", Help: "Processes tracked (seen recently, or exited within the retention time)."}),
		stacks: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "flightrec_agent_blocking_stacks", Help: "Blocking stacks cached for off-CPU attribution."}),
		stacksEvicted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "flightrec_agent_blocking_stacks_evicted_total", Help: "Blocking stacks evicted from the cache (bounded per process and in total)."}),
	}
	if reg != nil {
		reg.MustRegister(m.samples, m.offCPU, m.unknownStacks, m.events, m.hookDropped, m.snapshots,
			m.drain, m.build, m.processes, m.stacks, m.stacksEvicted, counterCollector{s})
	}
	return m
}

// observeStacks updates the cache metrics; the cache belongs to the drain
// goroutine, so it is read there rather than at scrape time.
func (m *metrics) observeStacks(c *stackCache) {
	m.stacks.Set(float64(c.len()))
	m.stacksEvicted.Add(float64(c.evicted - m.evictedSeen))
	m.evictedSeen = c.evicted
}

// counterCollector exports the in-kernel counters at scrape time, so a lost
// sample is visible even when nothing else reads the counters.
type counterCollector struct{ s *sampler.Sampler }

// counterDesc is one in-kernel counter as a metric.
type counterDesc struct {
	desc  *prometheus.Desc
	value func(*sampler.Counters) uint64
	label []string // the value of the desc's variable label, if any
}

func newCounterDesc(name, help string, value func(*sampler.Counters) uint64) counterDesc {
	return counterDesc{desc: prometheus.NewDesc(name, help, nil, nil), value: value}
}

var stackErrsDesc = prometheus.NewDesc("flightrec_agent_bpf_stack_errors_total", "Stacks the kernel could not walk.", []string{"space"}, nil)

// counterDescs lists every exported counter; it is immutable.
var counterDescs = []counterDesc{
	newCounterDesc("flightrec_agent_bpf_samples_total", "CPU samples the BPF program wrote to the ring buffer.",
		func(c *sampler.Counters) uint64 { return c.Samples }),
	newCounterDesc("flightrec_agent_bpf_samples_lost_total", "CPU samples dropped because the ring buffer was full.",
		func(c *sampler.Counters) uint64 { return c.Lost }),
	{desc: stackErrsDesc, value: func(c *sampler.Counters) uint64 { return c.UserStackErrors }, label: []string{"user"}},
	{desc: stackErrsDesc, value: func(c *sampler.Counters) uint64 { return c.KernelStackErrors }, label: []string{"kernel"}},
	newCounterDesc("flightrec_agent_bpf_samples_filtered_total", "Samples of processes outside the pid filter.",
		func(c *sampler.Counters) uint64 { return c.Filtered }),
	newCounterDesc("flightrec_agent_bpf_samples_idle_total", "Samples that hit an idle CPU.",
		func(c *sampler.Counters) uint64 { return c.Idle }),
	newCounterDesc("flightrec_agent_bpf_offcpu_intervals_total", "Off-CPU intervals the BPF program wrote to the ring buffer.",
		func(c *sampler.Counters) uint64 { return c.OffCPU }),
	newCounterDesc("flightrec_agent_bpf_offcpu_short_total", "Off-CPU intervals shorter than the minimum: counted, not sent.",
		func(c *sampler.Counters) uint64 { return c.OffCPUShort }),
	newCounterDesc("flightrec_agent_bpf_offcpu_stack_reused_total", "Switch-outs of threads in a streak of short off-CPU intervals that reused their last stack instead of capturing one.",
		func(c *sampler.Counters) uint64 { return c.OffCPUReused }),
	newCounterDesc("flightrec_agent_bpf_offcpu_lost_total", "Off-CPU intervals and blocking stacks dropped because the ring buffer was full.",
		func(c *sampler.Counters) uint64 { return c.OffCPULost }),
	newCounterDesc("flightrec_agent_bpf_events_total", "Process events the BPF programs wrote to the ring buffer.",
		func(c *sampler.Counters) uint64 { return c.Events }),
	newCounterDesc("flightrec_agent_bpf_events_lost_total", "Process events dropped because the ring buffer was full.",
		func(c *sampler.Counters) uint64 { return c.EventsLost }),
	newCounterDesc("flightrec_agent_bpf_stacks_total", "Blocking and crash stacks the BPF programs wrote to the ring buffer.",
		func(c *sampler.Counters) uint64 { return c.Stacks }),
}

func (c counterCollector) Describe(ch chan<- *prometheus.Desc) {
	seen := map[*prometheus.Desc]bool{}
	for _, d := range counterDescs {
		if !seen[d.desc] { // the labelled metrics share a desc
			seen[d.desc] = true
			ch <- d.desc
		}
	}
}

func (c counterCollector) Collect(ch chan<- prometheus.Metric) {
	v, err := c.s.ReadCounters()
	if err != nil {
		ch <- prometheus.NewInvalidMetric(counterDescs[0].desc, err)
		return
	}
	for _, d := range counterDescs {
		ch <- prometheus.MustNewConstMetric(d.desc, prometheus.CounterValue, float64(d.value(&v)), d.label...)
	}
}
