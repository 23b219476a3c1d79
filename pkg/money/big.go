package money

import (
	"fmt"
	"math/big"

	moneypb "google.golang.org/genproto/googleapis/type/money"
)

var nanosPerUnitBig = big.NewInt(NanosPerUnit)

// BigToProto converts an exact sum of nanos, which may exceed the int64 range of Nanos, into a
// google.type.Money (whose units are an int64); a sum beyond that is ErrOverflow.
func BigToProto(n *big.Int, currency string) (*moneypb.Money, error) {
	units, nanos := new(big.Int).QuoRem(n, nanosPerUnitBig, new(big.Int))
	if !units.IsInt64() {
		return nil, fmt.Errorf("%w: %s nanos", ErrOverflow, n)
	}
	return &moneypb.Money{CurrencyCode: currency, Units: units.Int64(), Nanos: int32(nanos.Int64())}, nil
}
