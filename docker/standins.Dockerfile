# Stand-ins for the observability stack's upstream images, for tests on a machine with
# no image registry: Debian's own packages (prometheus 2.42, alertmanager 0.25, redis 7,
# nats-server 2.9) on the local Debian base, over apt to the mirror the base already uses.
# Each target mimics its upstream image's entrypoint, paths and user, so the generated
# compose files run unchanged with only `image:` swapped (fleetobs/testing/docker).
#   docker build -f docker/standins.Dockerfile --build-arg BASE_IMAGE=... --target prometheus .
ARG BASE_IMAGE
FROM ${BASE_IMAGE} AS debian-services
RUN apt-get update -qq \
 && apt-get install -y -qq --no-install-recommends \
        prometheus prometheus-alertmanager redis-server nats-server wget >/dev/null \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin

# prom/prometheus: ENTRYPOINT /bin/prometheus, config /etc/prometheus, data /prometheus, nobody.
FROM debian-services AS prometheus
# /bin is /usr/bin (merged /usr): /bin/prometheus and /bin/promtool are there already.
RUN mkdir -p /prometheus && chown nobody:nogroup /prometheus
USER nobody
WORKDIR /prometheus
EXPOSE 9090
ENTRYPOINT ["tini", "--", "/bin/prometheus"]
CMD ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"]

# prom/alertmanager: ENTRYPOINT /bin/alertmanager, config /etc/alertmanager, data /alertmanager.
FROM debian-services AS alertmanager
RUN ln -s "$(command -v prometheus-alertmanager)" /usr/bin/alertmanager \
 && mkdir -p /alertmanager /etc/alertmanager && chown nobody:nogroup /alertmanager \
 && printf 'route:\n  receiver: default\nreceivers:\n  - name: default\n' > /etc/alertmanager/alertmanager.yml
USER nobody
WORKDIR /alertmanager
EXPOSE 9093 9094
ENTRYPOINT ["tini", "--", "/bin/alertmanager"]
CMD ["--config.file=/etc/alertmanager/alertmanager.yml", "--storage.path=/alertmanager"]

# redis: like the official image, `redis-server` without a config file listens on every
# interface with protected mode off; data in /data.
FROM debian-services AS redis
RUN mkdir -p /data && chown redis:redis /data \
 && printf '#!/bin/sh\nif [ "${1#-}" != "$1" ]; then set -- redis-server "$@"; fi\nif [ "$1" = redis-server ]; then shift; set -- redis-server --protected-mode no "$@"; fi\nexec "$@"\n' \
        > /usr/local/bin/docker-entrypoint.sh \
 && chmod +x /usr/local/bin/docker-entrypoint.sh
USER redis
WORKDIR /data
EXPOSE 6379
ENTRYPOINT ["tini", "--", "docker-entrypoint.sh"]
CMD ["redis-server"]

# nats: ENTRYPOINT /nats-server, client port 4222, monitoring 8222.
FROM debian-services AS nats
RUN ln -s "$(command -v nats-server)" /nats-server
USER nobody
EXPOSE 4222 8222
ENTRYPOINT ["tini", "--", "/nats-server"]
CMD ["--port", "4222", "--http_port", "8222"]
