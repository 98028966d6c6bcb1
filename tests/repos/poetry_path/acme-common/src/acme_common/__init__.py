NAME = "acme-common"
