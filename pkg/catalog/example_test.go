package catalog_test

import (
	"fmt"
	"time"

	"github.com/tallyhq/tally/pkg/catalog"
)

func ExampleCatalog_Quote() {
	epoch := time.Unix(0, 0).UTC()
	c, err := catalog.New(1, []catalog.ModelVersion{{
		ID: "0193-v1", ModelID: "whisper-large-v3", DisplayName: "Whisper", Modality: catalog.ModalitySpeechToText,
		Currency: "USD", EffectiveFrom: epoch,
		// $0.006 per minute, billed per second of audio.
		Dimensions: []catalog.Dimension{{Unit: "audio_seconds", Price: 6_000_000, Per: 60}},
	}}, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	usage, err := catalog.ParseUsage(map[string]string{"audio_seconds": "95.5"})
	if err != nil {
		fmt.Println(err)
		return
	}
	q, err := c.Quote("whisper-large-v3", usage, time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(q.VersionID, q.Total.Display(), q.Currency)
	// Output: 0193-v1 0.00955 USD
}
