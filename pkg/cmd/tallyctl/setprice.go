package main

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/types/known/timestamppb"

	pricingv1 "github.com/tallyhq/tally/pkg/gen/tally/pricing/v1"
)

// changeFlags are the flags every price change has.
type changeFlags struct {
	effective, reason, key, currency string
}

func (f *changeFlags) register(cmd *cobra.Command) {
	fs := cmd.Flags()
	fs.StringVar(&f.effective, "effective-from", "", "when the price takes effect: RFC 3339 or a duration from now (24h); default now")
	fs.StringVar(&f.reason, "reason", "", "why (required; audited with your token's subject)")
	fs.StringVar(&f.key, "idempotency-key", "", "the change's key: a retry with the same key is the same change (default: a new key, printed on stderr)")
	fs.StringVar(&f.currency, "currency", "", "ISO 4217 code of the prices (default the current version's, else USD)")
}

func (f *changeFlags) check() (*timestamppb.Timestamp, error) {
	if f.reason == "" {
		return nil, usagef("--reason is required")
	}
	return parseWhen("effective-from", f.effective, time.Now())
}

// parseDimension reads --unit UNIT=PRICE/PER, e.g. input_tokens=0.20/1000000.
func parseDimension(value, currency string) (*pricingv1.PriceDimension, error) {
	unit, rest, ok := strings.Cut(value, "=")
	price, per, ok2 := strings.Cut(rest, "/")
	if !ok || !ok2 || unit == "" {
		return nil, usagef("--unit %q: want UNIT=PRICE/PER, e.g. input_tokens=0.20/1000000", value)
	}
	n, err := strconv.ParseInt(per, 10, 64)
	if err != nil || n <= 0 {
		return nil, usagef("--unit %q: PER must be a positive whole number", value)
	}
	m, err := parseAmount("unit", price, currency)
	if err != nil {
		return nil, err
	}
	return &pricingv1.PriceDimension{Unit: unit, Price: m, Per: n}, nil
}

func (c *cli) setModelPriceCommand() *cobra.Command {
	var (
		ch                changeFlags
		units             []string
		display, modality string
	)
	cmd := &cobra.Command{
		Use:   "set-model MODEL --unit UNIT=PRICE/PER... --reason REASON",
		Short: "Set a model's prices, now or scheduled (--effective-from)",
		Long: `Create a new price version of a model, in force from --effective-from (default now). Give
every billable unit with --unit UNIT=PRICE/PER (PRICE an exact decimal per PER units). The
display name and modality are kept from the model's current version unless given (a new model
needs both). The change reaches every ledger replica within a second of taking effect.`,
		Example: `  tallyctl prices set-model llama-3.1-8b-instruct \
    --unit input_tokens=0.20/1000000 --unit output_tokens=0.20/1000000 \
    --effective-from 24h --reason "new GPU costs"
  tallyctl prices scheduled`,
		Args: exactArgs("MODEL"),
		RunE: c.runE(func(cmd *cobra.Command, args []string) error {
			req, err := modelRequest(args[0], &ch, units, display, modality)
			if err != nil {
				return err
			}
			return call(c, cmd, c.pricing, func(ctx context.Context, p pricingv1.PricingServiceClient) (*pricingv1.SetModelPriceResponse, error) {
				cur, err := currentModel(ctx, p, args[0])
				if err != nil {
					return nil, err
				}
				keepCurrent(req, cur, ch.currency)
				if req.IdempotencyKey, err = c.idempotencyKey(ch.key); err != nil {
					return nil, err
				}
				return p.SetModelPrice(ctx, req)
			}, func(r *pricingv1.SetModelPriceResponse) []*table {
				return []*table{modelsTable([]*pricingv1.ModelPrice{r.GetPrice()})}
			})
		}),
	}
	ch.register(cmd)
	f := cmd.Flags()
	f.StringArrayVar(&units, "unit", nil, "a billable unit's price, UNIT=PRICE/PER (repeat for each unit)")
	f.StringVar(&display, "display-name", "", "the name shown on the price list (default the current one)")
	f.StringVar(&modality, "modality", "", "llm, speech_to_text, text_to_speech, image, embedding, video or rerank (default the current one)")
	return cmd
}

// modelRequest builds a model's price change from the command line, before anything is sent;
// the prices' currency is set by keepCurrent.
func modelRequest(id string, ch *changeFlags, units []string, display, modality string) (*pricingv1.SetModelPriceRequest, error) {
	eff, err := ch.check()
	if err != nil {
		return nil, err
	}
	if len(units) == 0 {
		return nil, usagef("--unit is required (once per billable unit)")
	}
	mod, err := parseEnum("modality", modality, "MODALITY_", pricingv1.Modality_value)
	if err != nil {
		return nil, err
	}
	req := &pricingv1.SetModelPriceRequest{ModelId: id, DisplayName: display, Modality: pricingv1.Modality(mod), EffectiveFrom: eff, Reason: ch.reason}
	for _, u := range units {
		d, err := parseDimension(u, "")
		if err != nil {
			return nil, err
		}
		req.Dimensions = append(req.Dimensions, d)
	}
	return req, nil
}

// keepCurrent fills what the command line left out from the model's current version cur (nil
// for a new model): display name, modality and the prices' currency (else currency, else USD).
func keepCurrent(req *pricingv1.SetModelPriceRequest, cur *pricingv1.ModelPrice, currency string) {
	req.DisplayName = or(req.DisplayName, cur.GetDisplayName())
	if req.Modality == pricingv1.Modality_MODALITY_UNSPECIFIED {
		req.Modality = cur.GetModality()
	}
	if dims := cur.GetDimensions(); len(dims) > 0 {
		currency = or(currency, dims[0].GetPrice().GetCurrencyCode())
	}
	for _, d := range req.Dimensions {
		d.Price.CurrencyCode = or(currency, "USD")
	}
}

// instanceFlags are the description fields of an instance type; unset ones keep the current.
type instanceFlags struct {
	hourly, description, gpu string
	gpuCount, vcpu, memory   int32
	available                bool
}

func (c *cli) setInstancePriceCommand() *cobra.Command {
	var (
		ch changeFlags
		in instanceFlags
	)
	cmd := &cobra.Command{
		Use:   "set-instance TYPE --hourly-price PRICE --reason REASON",
		Short: "Set an instance type's hourly price, now or scheduled (--effective-from)",
		Long: `Create a new price version of an instance type, in force from --effective-from (default
now). Rentals keep the price locked when they started. Description, GPU, vCPU, memory and
availability are kept from the current version unless given; --available=false withdraws the
type from new rentals.`,
		Example: `  tallyctl prices set-instance gpu-a10g-small --hourly-price 1.10 --effective-from 2026-12-24T00:00:00Z --reason "year-end price"
  tallyctl prices set-instance gpu-h100-80g --hourly-price 4.20 --available=false --reason "capacity"`,
		Args: exactArgs("TYPE"),
		RunE: c.runE(func(cmd *cobra.Command, args []string) error {
			eff, err := ch.check()
			if err != nil {
				return err
			}
			price, err := parseAmount("hourly-price", in.hourly, ch.currency)
			if err != nil {
				return err
			}
			return call(c, cmd, c.pricing, func(ctx context.Context, p pricingv1.PricingServiceClient) (*pricingv1.SetInstancePriceResponse, error) {
				cur, err := currentInstance(ctx, p, args[0])
				if err != nil {
					return nil, err
				}
				req := in.request(cmd, args[0], cur)
				req.EffectiveFrom, req.Reason, req.HourlyPrice = eff, ch.reason, price
				price.CurrencyCode = or(price.CurrencyCode, cur.GetHourlyPrice().GetCurrencyCode(), "USD")
				if req.IdempotencyKey, err = c.idempotencyKey(ch.key); err != nil {
					return nil, err
				}
				return p.SetInstancePrice(ctx, req)
			}, func(r *pricingv1.SetInstancePriceResponse) []*table {
				return []*table{instancesTable([]*pricingv1.InstancePrice{r.GetPrice()})}
			})
		}),
	}
	ch.register(cmd)
	f := cmd.Flags()
	f.StringVar(&in.hourly, "hourly-price", "", "the hourly price, an exact decimal (required)")
	f.StringVar(&in.description, "description", "", "description (default the current one)")
	f.StringVar(&in.gpu, "gpu", "", "GPU model (default the current one)")
	f.Int32Var(&in.gpuCount, "gpu-count", 0, "number of GPUs (default the current one)")
	f.Int32Var(&in.vcpu, "vcpu", 0, "vCPUs (default the current one)")
	f.Int32Var(&in.memory, "memory-gib", 0, "memory in GiB (default the current one)")
	f.BoolVar(&in.available, "available", true, "offered for new rentals (default the current one)")
	return cmd
}

// request builds the change from the flags given, the rest from the current version cur.
func (in *instanceFlags) request(cmd *cobra.Command, id string, cur *pricingv1.InstancePrice) *pricingv1.SetInstancePriceRequest {
	set := cmd.Flags().Changed
	req := &pricingv1.SetInstancePriceRequest{InstanceTypeId: id, Description: cur.GetDescription(), Gpu: cur.GetGpu(),
		GpuCount: cur.GetGpuCount(), Vcpu: cur.GetVcpu(), MemoryGib: cur.GetMemoryGib()}
	if cur != nil {
		avail := cur.GetAvailable()
		req.Available = &avail
	}
	if set("description") {
		req.Description = in.description
	}
	if set("gpu") {
		req.Gpu = in.gpu
	}
	if set("gpu-count") {
		req.GpuCount = in.gpuCount
	}
	if set("vcpu") {
		req.Vcpu = in.vcpu
	}
	if set("memory-gib") {
		req.MemoryGib = in.memory
	}
	if set("available") {
		req.Available = &in.available
	}
	return req
}

// or returns the first non-empty string.
func or(values ...string) string {
	for _, v := range values {
		if v != "" {
			return v
		}
	}
	return ""
}
