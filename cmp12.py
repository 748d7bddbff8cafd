import http.client as HC, json, urllib.parse, sys
def mk(port,tokf):
    tok=open(tokf).read().strip()
    def g(path):
        c=HC.HTTPConnection('127.0.0.1',port); c.request('GET',path,headers={'Authorization':'Bearer '+tok}); r=c.getresponse(); d=r.read(); return r.status,d
    return g
a=mk(17370,'/tmp/probeT/d1/dev-token'); b=mk(17470,'/tmp/probeT/d2/dev-token')
pre=sys.argv[1]
la=json.loads(a('/v1/tenants/demo/docs?limit=1000&prefix='+urllib.parse.quote(pre))[1]); lb=json.loads(b('/v1/tenants/demo/docs?limit=1000&prefix='+urllib.parse.quote(pre))[1])
ka=[i['key'] for i in la['items']]; kb=[i['key'] for i in lb['items']]
print('keys equal', ka==kb, len(ka), len(kb))
for k in sorted(set(ka)|set(kb)):
    p='/v1/tenants/demo/docs/'+urllib.parse.quote(k,safe='').replace('.','%2E')
    x=a(p); y=b(p)
    print(repr(k), 'same' if x==y else ('DIFF', x[1][:60], y[1][:60]), x[1][:50])
