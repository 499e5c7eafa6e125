ARG BASE=busybox
FROM ${BASE} AS deps
RUN echo deps > /deps

FROM scratch AS unused
COPY --from=deps /deps /deps

FROM ${BASE} AS build
COPY --from=deps /deps /deps
RUN echo built > /out

FROM build AS final
COPY --from=deps /deps /deps2
CMD ["cat", "/out"]
