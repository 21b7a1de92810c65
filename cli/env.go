package cli

import (
	"context"
	"fmt"
	"text/tabwriter"

	"github.com/sirupsen/logrus"

	"github.com/rexray/rexray/config"
	"github.com/rexray/rexray/drivers"
)

// env prints the effective settings: the plugin's, then each service
// driver's, with where each value came from.
func (c *Command) env(ctx context.Context, args []string) error {
	f := newFlags("env", c.Stderr)
	if _, err := f.parse(args, 0); err != nil {
		return err
	}
	cfg, err := config.FromEnv()
	if err != nil {
		return err
	}
	settings := cfg.Settings()
	list, err := cfg.ServiceList()
	if err != nil {
		return err
	}
	instance, err := cfg.Instance()
	if err != nil {
		return err
	}
	for _, s := range list {
		drv, err := c.Registry.New(ctx, s.Driver, drivers.Settings{Service: s.Name, InstanceID: instance, Log: logrus.New()})
		if err != nil {
			return fmt.Errorf("service %s: %w", s.Name, err)
		}
		if d, ok := drv.(drivers.Configured); ok {
			settings = append(settings, d.Settings()...)
		}
	}
	if f.format == "json" {
		return c.printJSON(settings)
	}
	w := tabwriter.NewWriter(c.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "NAME\tVALUE\tSOURCE")
	for _, s := range settings {
		fmt.Fprintf(w, "%s\t%s\t%s\n", s.Name, s.Value, s.Source)
	}
	return w.Flush()
}
