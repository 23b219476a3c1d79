package main

import (
	"context"
	"strconv"

	"github.com/spf13/cobra"

	instancesv1 "github.com/tallyhq/tally/pkg/gen/tally/instances/v1"
	notificationsv1 "github.com/tallyhq/tally/pkg/gen/tally/notifications/v1"
)

func (c *cli) deliveriesCommand() *cobra.Command {
	var (
		page                pageFlags
		org, member, status string
	)
	cmd := &cobra.Command{
		Use:   "deliveries",
		Short: "List email deliveries (low credit, expiry, payment, rental suspended)",
		Long: `List the emails notifications queued and how their delivery went: kind, recipient, status
(pending, sent, failed), attempts and the last SMTP error.`,
		Example: `  tallyctl deliveries --org acme
  tallyctl deliveries --status failed -o json`,
		Args: exactArgs(),
		RunE: c.runE(func(cmd *cobra.Command, _ []string) error {
			st, err := parseEnum("status", status, "DELIVERY_STATUS_", notificationsv1.DeliveryStatus_value)
			if err != nil {
				return err
			}
			req := &notificationsv1.ListDeliveriesRequest{OrgId: org, MemberId: member, Status: notificationsv1.DeliveryStatus(st),
				PageSize: page.size, PageToken: page.token}
			return call(c, cmd, c.notifications, func(ctx context.Context, n notificationsv1.NotificationsServiceClient) (*notificationsv1.ListDeliveriesResponse, error) {
				return n.ListDeliveries(ctx, req)
			}, func(r *notificationsv1.ListDeliveriesResponse) []*table {
				return []*table{deliveriesTable(r.GetDeliveries())}
			})
		}),
	}
	page.register(cmd, "deliveries")
	f := cmd.Flags()
	f.StringVar(&org, "org", "", "only this organization's")
	f.StringVar(&member, "member", "", "only this member's (with --org)")
	f.StringVar(&status, "status", "", "only pending, sent or failed ones")
	return cmd
}

func deliveriesTable(ds []*notificationsv1.Delivery) *table {
	t := newTable("created", "kind", "org", "member", "to", "status", "attempts", "sent", "last error", "id")
	for _, d := range ds {
		t.add(formatTime(d.GetCreateTime()), enumName(d.GetKind().String(), "EMAIL_KIND_"), d.GetOrgId(), d.GetMemberId(), d.GetTo(),
			enumName(d.GetStatus().String(), "DELIVERY_STATUS_"), strconv.Itoa(int(d.GetAttempts())), formatTime(d.GetSentTime()),
			d.GetLastError(), d.GetId())
	}
	return t
}

func (c *cli) notifications() (notificationsv1.NotificationsServiceClient, error) {
	conn, err := c.conn("notifications")
	if err != nil {
		return nil, err
	}
	return notificationsv1.NewNotificationsServiceClient(conn), nil
}

func (c *cli) instances() (instancesv1.InstanceMeteringServiceClient, error) {
	conn, err := c.conn("instances-metering")
	if err != nil {
		return nil, err
	}
	return instancesv1.NewInstanceMeteringServiceClient(conn), nil
}

func (c *cli) rentalsCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "rentals",
		Aliases: []string{"rental"},
		Short:   "List, show, start and stop metered instance rentals",
		Long: `Rented instances are charged per started billing period at the hourly price locked when the
rental started. A rental whose organization runs out of credits is suspended. Start and stop are
what the instance controller calls; ops may call them to repair a rental by hand.`,
	}
	cmd.AddCommand(c.rentalsListCommand(), c.rentalsGetCommand(), c.rentalsStartCommand(), c.rentalsStopCommand())
	return cmd
}

func (c *cli) rentalsListCommand() *cobra.Command {
	var page pageFlags
	cmd := &cobra.Command{
		Use:     "list ORG",
		Short:   "List an organization's rentals",
		Example: `  tallyctl rentals list acme`,
		Args:    exactArgs("ORG"),
		RunE: c.runE(func(cmd *cobra.Command, args []string) error {
			return call(c, cmd, c.instances, func(ctx context.Context, m instancesv1.InstanceMeteringServiceClient) (*instancesv1.ListRentalsResponse, error) {
				return m.ListRentals(ctx, &instancesv1.ListRentalsRequest{OrgId: args[0], PageSize: page.size, PageToken: page.token})
			}, func(r *instancesv1.ListRentalsResponse) []*table { return []*table{rentalsTable(r.GetRentals())} })
		}),
	}
	page.register(cmd, "rentals")
	return cmd
}

func (c *cli) rentalsGetCommand() *cobra.Command {
	return &cobra.Command{
		Use:     "get ORG INSTANCE",
		Short:   "Show one rental",
		Example: `  tallyctl rentals get acme i-0123`,
		Args:    exactArgs("ORG", "INSTANCE"),
		RunE: c.runE(func(cmd *cobra.Command, args []string) error {
			return call(c, cmd, c.instances, func(ctx context.Context, m instancesv1.InstanceMeteringServiceClient) (*instancesv1.GetRentalResponse, error) {
				return m.GetRental(ctx, &instancesv1.GetRentalRequest{OrgId: args[0], InstanceId: args[1]})
			}, func(r *instancesv1.GetRentalResponse) []*table { return oneRental(r.GetRental()) })
		}),
	}
}

func (c *cli) rentalsStartCommand() *cobra.Command {
	var org, instanceType, key string
	cmd := &cobra.Command{
		Use:   "start INSTANCE --org ORG --type INSTANCE_TYPE",
		Short: "Start metering an instance (the first period is charged at once)",
		Example: `  tallyctl rentals start i-0123 --org acme --type gpu-a10g-small
  tallyctl rentals start i-0123 --org acme --type gpu-a10g-small --idempotency-key start-i-0123`,
		Args: exactArgs("INSTANCE"),
		RunE: c.runE(func(cmd *cobra.Command, args []string) error {
			if org == "" || instanceType == "" {
				return usagef("--org and --type are required")
			}
			return call(c, cmd, c.instances, func(ctx context.Context, m instancesv1.InstanceMeteringServiceClient) (*instancesv1.StartMeteringResponse, error) {
				k, err := c.idempotencyKey(key)
				if err != nil {
					return nil, err
				}
				return m.StartMetering(ctx, &instancesv1.StartMeteringRequest{InstanceId: args[0], OrgId: org, InstanceType: instanceType, IdempotencyKey: k})
			}, func(r *instancesv1.StartMeteringResponse) []*table { return oneRental(r.GetRental()) })
		}),
	}
	f := cmd.Flags()
	f.StringVar(&org, "org", "", "the organization charged (required)")
	f.StringVar(&instanceType, "type", "", "the instance type, as on the price list (required)")
	f.StringVar(&key, "idempotency-key", "", "the start's key: a retry with the same key is the same start (default: a new key, printed on stderr)")
	return cmd
}

func (c *cli) rentalsStopCommand() *cobra.Command {
	return &cobra.Command{
		Use:     "stop INSTANCE",
		Short:   "Stop metering an instance (no further period is charged)",
		Example: `  tallyctl rentals stop i-0123`,
		Args:    exactArgs("INSTANCE"),
		RunE: c.runE(func(cmd *cobra.Command, args []string) error {
			return call(c, cmd, c.instances, func(ctx context.Context, m instancesv1.InstanceMeteringServiceClient) (*instancesv1.StopMeteringResponse, error) {
				return m.StopMetering(ctx, &instancesv1.StopMeteringRequest{InstanceId: args[0]})
			}, func(r *instancesv1.StopMeteringResponse) []*table { return oneRental(r.GetRental()) })
		}),
	}
}

func oneRental(r *instancesv1.Rental) []*table {
	return []*table{rentalsTable([]*instancesv1.Rental{r})}
}

func rentalsTable(rs []*instancesv1.Rental) *table {
	t := newTable("instance", "org", "type", "state", "hourly", "period", "periods charged", "total charged", "started", "next period", "stopped")
	for _, r := range rs {
		t.add(r.GetInstanceId(), r.GetOrgId(), r.GetInstanceType(), enumName(r.GetState().String(), "RENTAL_STATE_"),
			formatMoney(r.GetHourlyPrice()), formatDuration(r.GetBillingPeriod()), formatInt(r.GetPeriodsCharged()),
			formatMoney(r.GetTotalCharged()), formatTime(r.GetStartedAt()), formatTime(r.GetNextPeriodAt()), formatTime(r.GetStoppedAt()))
	}
	return t
}
