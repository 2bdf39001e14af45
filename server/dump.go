package server

import (
	"context"
	"errors"

	"connectrpc.com/connect"

	vssv1 "github.com/govss/vss/gen/vss/v1"
)

var errNoDump = connect.NewError(connect.CodeUnimplemented, errors.New("this server's store cannot export or import"))

func (c connectService) ExportData(ctx context.Context, req *connect.Request[vssv1.ExportDataRequest], stream *connect.ServerStream[vssv1.ExportDataResponse]) error {
	return errNoDump
}

func (c connectService) ImportData(ctx context.Context, req *connect.Request[vssv1.ImportDataRequest]) (*connect.Response[vssv1.ImportDataResponse], error) {
	return nil, errNoDump
}

func (c connectService) DeleteStore(ctx context.Context, req *connect.Request[vssv1.DeleteStoreRequest]) (*connect.Response[vssv1.DeleteStoreResponse], error) {
	return nil, errNoDump
}

func (c connectService) DeleteAllData(ctx context.Context, req *connect.Request[vssv1.DeleteAllDataRequest]) (*connect.Response[vssv1.DeleteAllDataResponse], error) {
	return nil, errNoDump
}
