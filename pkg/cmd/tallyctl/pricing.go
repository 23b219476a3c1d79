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

func (c *cli) pricing() (pricingv1.PricingServiceClient, error) {
	conn, err := c.conn("pricing")
	if err != nil {
		return nil, err
	}
	return pricingv1.NewPricingServiceClient(conn), nil
}

func (c *cli) pricesCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "prices",
		Short: "Show the price list and schedule price changes",
		Long: `Show the public price list (models and instance types, in force now or at --at) and the
changes scheduled to take effect later, and make price changes. Every change is an immutable
version with an effective time (now or later), audited with your token's subject and a reason.`,
	}
	cmd.AddCommand(c.pricesModelsCommand(), c.pricesInstancesCommand(), c.pricesScheduledCommand(),
		c.setModelPriceCommand(), c.setInstancePriceCommand())
	return cmd
}

// parseWhen reads a point in time: RFC 3339, or a duration from now ("24h", "90m").
func parseWhen(flag, value string, now time.Time) (*timestamppb.Timestamp, error) {
	if value == "" {
		return nil, nil
	}
	if d, err := time.ParseDuration(value); err == nil {
		return timestamppb.New(now.Add(d)), nil
	}
	t, err := time.Parse(time.RFC3339, value)
	if err != nil {
		return nil, usagef("--%s %q: want an RFC 3339 time (2026-12-24T00:00:00Z) or a duration from now (24h)", flag, value)
	}
	return timestamppb.New(t), nil
}

// listAt is a price-list command: the versions in force now or at --at.
func (c *cli) listAt(use, short, example string, run func(cmd *cobra.Command, at *timestamppb.Timestamp) error) *cobra.Command {
	var at string
	cmd := &cobra.Command{
		Use: use, Short: short, Example: example,
		Args: exactArgs(),
		RunE: c.runE(func(cmd *cobra.Command, _ []string) error {
			when, err := parseWhen("at", at, time.Now())
			if err != nil {
				return err
			}
			return run(cmd, when)
		}),
	}
	cmd.Flags().StringVar(&at, "at", "", "the prices in force at this time (RFC 3339, or a duration from now); default now")
	return cmd
}

func (c *cli) pricesModelsCommand() *cobra.Command {
	return c.listAt("models", "List the model prices in force (now or at --at)", `  tallyctl prices models
  tallyctl prices models --at 2026-12-24T00:00:00Z -o json`, func(cmd *cobra.Command, at *timestamppb.Timestamp) error {
		return call(c, cmd, c.pricing, func(ctx context.Context, p pricingv1.PricingServiceClient) (*pricingv1.ListModelPricesResponse, error) {
			return p.ListModelPrices(ctx, &pricingv1.ListModelPricesRequest{At: at})
		}, func(r *pricingv1.ListModelPricesResponse) []*table { return []*table{modelsTable(r.GetModels())} })
	})
}

func (c *cli) pricesInstancesCommand() *cobra.Command {
	return c.listAt("instances", "List the instance types' hourly prices in force (now or at --at)", `  tallyctl prices instances
  tallyctl prices instances --at 48h`, func(cmd *cobra.Command, at *timestamppb.Timestamp) error {
		return call(c, cmd, c.pricing, func(ctx context.Context, p pricingv1.PricingServiceClient) (*pricingv1.ListInstancePricesResponse, error) {
			return p.ListInstancePrices(ctx, &pricingv1.ListInstancePricesRequest{At: at})
		}, func(r *pricingv1.ListInstancePricesResponse) []*table {
			return []*table{instancesTable(r.GetInstances())}
		})
	})
}

func (c *cli) pricesScheduledCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "scheduled",
		Short: "List the price changes scheduled to take effect later",
		Long: `List the model and instance-type price versions whose effective time is still ahead.
With -o json the reply is {"catalogVersion", "models": [...], "instances": [...]}: the scheduled
versions only.`,
		Example: `  tallyctl prices scheduled`,
		Args:    exactArgs(),
		RunE: c.runE(func(cmd *cobra.Command, _ []string) error {
			return call(c, cmd, c.pricing, func(ctx context.Context, p pricingv1.PricingServiceClient) (*pricingv1.CatalogSnapshot, error) {
				models, err := p.ListModelPrices(ctx, &pricingv1.ListModelPricesRequest{})
				if err != nil {
					return nil, err
				}
				instances, err := p.ListInstancePrices(ctx, &pricingv1.ListInstancePricesRequest{})
				if err != nil {
					return nil, err
				}
				// The API's own message type, holding only the scheduled versions.
				return &pricingv1.CatalogSnapshot{CatalogVersion: models.GetCatalogVersion(),
					Models: models.GetScheduled(), Instances: instances.GetScheduled()}, nil
			}, func(r *pricingv1.CatalogSnapshot) []*table {
				return []*table{modelsTable(r.GetModels()), instancesTable(r.GetInstances())}
			})
		}),
	}
}

func modelsTable(models []*pricingv1.ModelPrice) *table {
	t := newTable("model", "name", "modality", "prices", "effective from", "version")
	for _, m := range models {
		t.add(m.GetModelId(), m.GetDisplayName(), enumName(m.GetModality().String(), "MODALITY_"),
			formatDimensions(m.GetDimensions()), formatTime(m.GetEffectiveFrom()), m.GetVersionId())
	}
	return t
}

// formatDimensions shows a model's unit prices: "input_tokens $0.18/1000000, output_tokens ...".
func formatDimensions(dims []*pricingv1.PriceDimension) string {
	parts := make([]string, 0, len(dims))
	for _, d := range dims {
		parts = append(parts, d.GetUnit()+" "+formatMoney(d.GetPrice())+"/"+strconv.FormatInt(d.GetPer(), 10))
	}
	return strings.Join(parts, ", ")
}

func instancesTable(instances []*pricingv1.InstancePrice) *table {
	t := newTable("instance type", "description", "gpu", "vcpu", "memory gib", "hourly", "available", "effective from", "version")
	for _, in := range instances {
		gpu := ""
		if in.GetGpuCount() > 0 {
			gpu = strconv.Itoa(int(in.GetGpuCount())) + "x " + in.GetGpu()
		}
		t.add(in.GetInstanceTypeId(), in.GetDescription(), gpu, strconv.Itoa(int(in.GetVcpu())), strconv.Itoa(int(in.GetMemoryGib())),
			formatMoney(in.GetHourlyPrice()), strconv.FormatBool(in.GetAvailable()), formatTime(in.GetEffectiveFrom()), in.GetVersionId())
	}
	return t
}

// currentModel returns the version of a model in force now, nil for a new model.
func currentModel(ctx context.Context, client pricingv1.PricingServiceClient, id string) (*pricingv1.ModelPrice, error) {
	resp, err := client.ListModelPrices(ctx, &pricingv1.ListModelPricesRequest{})
	if err != nil {
		return nil, err
	}
	for _, m := range resp.GetModels() {
		if m.GetModelId() == id {
			return m, nil
		}
	}
	return nil, nil
}

// currentInstance returns the version of an instance type in force now, nil for a new one.
func currentInstance(ctx context.Context, client pricingv1.PricingServiceClient, id string) (*pricingv1.InstancePrice, error) {
	resp, err := client.ListInstancePrices(ctx, &pricingv1.ListInstancePricesRequest{})
	if err != nil {
		return nil, err
	}
	for _, in := range resp.GetInstances() {
		if in.GetInstanceTypeId() == id {
			return in, nil
		}
	}
	return nil, nil
}
