package sqlstore

import "github.com/bunqtpp/tpp/seal"

// seal seals pt bound to ad and returns the value to write.
func (st *Store) seal(kr *seal.Keyring, pt []byte, ad string) (any, error) {
	b, err := kr.Seal(pt, []byte(ad))
	if err != nil {
		return nil, err
	}
	return st.dialect.EncodeSealed(b), nil
}

// open opens a value written by seal.
func (st *Store) open(kr *seal.Keyring, c sealedCol, ad string) ([]byte, error) {
	b, err := st.dialect.DecodeSealed(c.Stored)
	if err != nil {
		return nil, err
	}
	return kr.Open(b, []byte(ad))
}
