package imdstest

import (
	"encoding/json"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"
)

// identityDocument is the instance identity document, with the fields the
// SDKs read (region, availabilityZone) and made-up values in the shapes of
// real ones for the rest.
type identityDocument struct {
	AccountID        string `json:"accountId"`
	Architecture     string `json:"architecture"`
	AvailabilityZone string `json:"availabilityZone"`
	ImageID          string `json:"imageId"`
	InstanceID       string `json:"instanceId"`
	InstanceType     string `json:"instanceType"`
	PendingTime      string `json:"pendingTime"`
	PrivateIP        string `json:"privateIp"`
	Region           string `json:"region"`
	Version          string `json:"version"`
}

// The instance metadata tree, as EC2 serves it: a directory lists its
// entries one per line, those that are directories with a trailing '/',
// with or without a '/' of its own after its name; a leaf answers with or
// without one too (aws-cli v2 and botocore ask for
// placement/availability-zone/). The values are made up, in the shapes of
// real ones, but for those the SDKs read: the region, the zone, the
// partition and domain, and the role.
const (
	accountID  = "123456789012"
	instanceID = "i-0123456789abcdef0"
	imageID    = "ami-0123456789abcdef0"
)

// metadata answers the instance metadata paths other than the token and
// the credentials: a leaf of the tree, or a listing. ok is false for a
// path it does not know. st.mu is held.
func (st *state) metadata(path string) (_ response, ok bool) {
	rest, ok := strings.CutPrefix(path, "/latest")
	if !ok {
		return response{}, false
	}
	rest = strings.Trim(rest, "/")
	leaves := st.leaves()
	if v, ok := leaves[rest]; ok {
		ctype := textPlain
		if strings.HasPrefix(v, "{") {
			ctype = appJSON
		}
		return response{status: http.StatusOK, ctype: ctype, body: v}, true
	}
	if list := listing(leaves, rest); list != "" {
		return response{status: http.StatusOK, ctype: textPlain, body: list}, true
	}
	return response{}, false
}

// leaves are the tree's leaves, by their path under /latest/.
func (st *state) leaves() map[string]string {
	region := st.cfg.Region
	zone := region + "a"
	partition, domain := "aws", "amazonaws.com"
	switch {
	case strings.HasPrefix(region, "cn-"):
		partition, domain = "aws-cn", "amazonaws.com.cn"
	case strings.HasPrefix(region, "us-gov-"):
		partition = "aws-us-gov"
	}
	host := "ip-127-0-0-1." + region + ".compute.internal"
	m := map[string]string{
		"meta-data/ami-id":                      imageID,
		"meta-data/hostname":                    host,
		"meta-data/instance-id":                 instanceID,
		"meta-data/instance-type":               "t3.micro",
		"meta-data/local-hostname":              host,
		"meta-data/local-ipv4":                  "127.0.0.1",
		"meta-data/mac":                         "0e:00:00:00:00:01",
		"meta-data/placement/availability-zone": zone,
		"meta-data/placement/region":            region,
		"meta-data/services/domain":             domain,
		"meta-data/services/partition":          partition,
		"dynamic/instance-identity/document":    st.identity(zone),
	}
	if !st.cfg.NoRole {
		m["meta-data/iam/info"] = st.iamInfo()
	}
	return m
}

// listing lists the directory dir ("" is /latest/ itself) of the tree
// whose leaves are given, or returns "" if it is none. The credentials'
// directory is listed too, though its answers are the server's own.
func listing(leaves map[string]string, dir string) string {
	prefix := dir + "/"
	if dir == "" {
		prefix = ""
	}
	names := map[string]bool{}
	add := func(p string) {
		if rest, ok := strings.CutPrefix(p, prefix); ok && rest != "" {
			if i := strings.IndexByte(rest, '/'); i >= 0 {
				names[rest[:i+1]] = true
			} else {
				names[rest] = true
			}
		}
	}
	for p := range leaves {
		add(p)
	}
	add(strings.TrimPrefix(roleListPath, "/latest/"))
	if len(names) == 0 {
		return ""
	}
	list := slices.Sorted(maps.Keys(names))
	if dir == "" { // EC2 lists /latest/'s entries without a '/'
		for i := range list {
			list[i] = strings.TrimSuffix(list[i], "/")
		}
	}
	return strings.Join(list, "\n")
}

// identity is the instance identity document.
func (st *state) identity(zone string) string {
	b, err := json.MarshalIndent(identityDocument{
		AccountID:        accountID,
		Architecture:     "x86_64",
		AvailabilityZone: zone,
		ImageID:          imageID,
		InstanceID:       instanceID,
		InstanceType:     "t3.micro",
		PendingTime:      st.started.UTC().Format(time.RFC3339),
		PrivateIP:        "127.0.0.1",
		Region:           st.cfg.Region,
		Version:          "2017-09-30",
	}, "", "  ")
	if err != nil {
		panic(err) // cannot happen: the document holds strings only
	}
	return string(b)
}

// iamInfo is meta-data/iam/info: the instance profile of the role.
func (st *state) iamInfo() string {
	b, err := json.MarshalIndent(struct {
		Code               string
		LastUpdated        string
		InstanceProfileArn string
		InstanceProfileID  string `json:"InstanceProfileId"`
	}{"Success", st.started.UTC().Format(time.RFC3339), "arn:aws:iam::" + accountID + ":instance-profile/" + st.cfg.Role, "AIPAEXAMPLEPROFILE0001"}, "", "  ")
	if err != nil {
		panic(err) // cannot happen: the document holds strings only
	}
	return string(b)
}
